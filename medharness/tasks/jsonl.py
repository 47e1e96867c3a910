"""`jsonl`: bring your own dataset. The folder holds `<split>.jsonl`, one object per line:
  {"id": "q1", "image": "imgs/a.png" | "images": [...], "question": "...",
   "answer": "..." | "answers": [...], "answer_type": "closed"|"open", "choices": [...],
   "metadata": {"modality": "ct", ...}, "clinical": {"window_center": 40, "window_width": 400, ...}}
Image paths are relative to the folder and may not leave it. DICOM and NIfTI images (.dcm,
.nii, .nii.gz) are shown as one 2-D view: the card option `clinical` and the record's `clinical`
(which wins) choose frame, slice, axis and window (medharness.clinical_images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from pydantic import ValidationError

from medharness.cards import describe_validation_error
from medharness.clinical_images import inspect, is_clinical
from medharness.errors import UserError
from medharness.images import ImageError, resolve_inside
from medharness.registry import TASK_PLUGINS
from medharness.schema import ClinicalView, ImageRef, Sample
from medharness.tasks.base import TaskOptions, TaskPlugin


class JsonlOptions(TaskOptions):
    # the card-wide DICOM / NIfTI view (a record's own `clinical` wins); checked as a ClinicalView
    clinical: Optional[dict[str, Any]] = None


class JsonlTask(TaskPlugin):
    Options = JsonlOptions

    def load(self, data_dir: Optional[Path], split: str) -> Iterator[Sample]:
        if data_dir is None:
            raise UserError(f"task {self.card.name!r} reads a local folder only; pass --data-dir with <split>.jsonl inside")
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            raise UserError(f"{path}: not found; the folder must hold {split}.jsonl")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                yield self.parse(path, number, line, data_dir)

    def parse(self, path: Path, number: int, line: str, root: Path) -> Sample:
        try:
            row = json.loads(line)
            images = row.get("images") or ([row["image"]] if row.get("image") else [])
            answers = row.get("answers") or ([row["answer"]] if "answer" in row else [])
            sample = Sample(
                id=str(row["id"]), question=row.get("question", ""), references=[str(a) for a in answers],
                answer_type=row.get("answer_type"), choices=row.get("choices"),
                metadata={"modality": "unknown", **row.get("metadata", {})},
                images=[ImageRef(root=str(root), path=p) for p in images],
            )
        except ValidationError as exc:
            raise UserError(f"{path}:{number}: malformed sample ({describe_validation_error(exc)})") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{number}: malformed sample ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        for ref in sample.images:
            try:
                resolve_inside(root, ref.path)
            except ImageError as exc:
                return sample.model_copy(update={"error": str(exc)})
        return self.pin_clinical_views(sample, row.get("clinical"), f"{path}:{number}")

    def pin_clinical_views(self, sample: Sample, given: Any, where: str) -> Sample:
        """Check each DICOM / NIfTI image now and pin the view every adapter will see; the view
        shown is recorded in metadata `image_views`. A bad file is this sample's data error."""
        card = self.option("clinical", {})
        if given is not None and not isinstance(given, dict):
            raise UserError(f"{where}: clinical must be an object such as {{\"window_center\": 40, \"window_width\": 400}}")
        settings = {**card, **(given or {})}
        if given and "window_center" in given:
            settings["window_width"] = given.get("window_width")
        try:
            view = ClinicalView(**settings)
        except ValidationError as exc:
            raise UserError(f"{where}: clinical settings ({describe_validation_error(exc)})") from None
        source = "record" if given and "window_center" in given else "card"
        clinical = [i for i, ref in enumerate(sample.images) if is_clinical(ref.path)]
        if given and not clinical:
            raise UserError(f"{where}: clinical settings apply to .dcm, .nii and .nii.gz images; this record has none")
        images, views = list(sample.images), []
        for i in clinical:
            ref = images[i]
            path = resolve_inside(ref.root, ref.path)
            try:
                if not path.is_file():
                    raise ImageError(f"image not found: {path}")
                pinned, shown = inspect(path, ref.path, view, source)
            except ImageError as exc:
                return sample.model_copy(update={"error": str(exc)})
            images[i] = ref.model_copy(update={"view": pinned})
            views.append(shown)
        if not views:
            return sample
        return sample.model_copy(update={"images": images, "metadata": {**sample.metadata, "image_views": views}})


TASK_PLUGINS.register("jsonl", JsonlTask)
