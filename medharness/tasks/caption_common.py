"""What the captioning and report-generation tasks share: split checks, the data folder,
image references that must stay inside it, and one way to build a caption Sample.

A caption sample has `question` "" (the card's `prompt` is the instruction), `references` the
reference caption(s) or report, and `metadata.modality` with `modality_source`. Card options
read here: `skip_without_reference` (default false): leave out samples whose reference is
empty, as the usual report-generation splits do; otherwise they are kept, sent to the model, and
left out of the caption metrics with a warning.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.images import ImageError, resolve_inside
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import ModalityOptions, TaskOptions, TaskPlugin, check_split, existing_folder


class CaptionOptions(TaskOptions):
    skip_without_reference: Optional[bool] = None


class LabelledCaptionOptions(CaptionOptions, ModalityOptions):
    """A caption set of one known modality, stated by its card."""


class CaptionTask(TaskPlugin):
    """Subclasses implement `samples(data_dir, split)`, yielding Samples (or None to skip)."""

    Options = CaptionOptions

    def load(self, data_dir: Optional[Path], split: str) -> Iterator[Sample]:
        check_split(self.card, split)
        for sample in self.samples(data_dir, split):
            if sample is not None:
                yield sample

    def samples(self, data_dir: Optional[Path], split: str) -> Iterator[Optional[Sample]]:
        raise NotImplementedError

    def local_folder(self, data_dir: Optional[Path], layout: str) -> Path:
        """The --data-dir folder, which these local layouts require."""
        if data_dir is None:
            env = f" or set {self.card.data_env}" if self.card.data_env else ""
            raise UserError(f"task {self.card.name} reads a local copy: pass --data-dir{env} with {layout}")
        return existing_folder(Path(data_dir), layout)

    def refuse_options(self, keys: tuple[str, ...], layout: str, other: str) -> None:
        """Options that only another layout reads are an error here, never silently ignored."""
        chosen = sorted(k for k in keys if k in self.card.options)
        if chosen:
            raise UserError(
                f"option(s) {', '.join(chosen)} need the {other}: the {layout} has one report text per entry; "
                f"remove them or point --data-dir at the {other}"
            )

    def r2gen_samples(self, folder: Path, split: str, metadata: dict[str, Any]) -> Iterator[Optional[Sample]]:
        """R2Gen's preprocessed layout (annotation.json {split: [{id, report, image_path, ...}]} and
        images/): one sample per entry, id = the entry's id, reference = its report as given.
        Other keys of an entry (study_id, subject_id) are kept in metadata as strings."""
        for index, entry in enumerate(r2gen_entries(folder / "annotation.json", split)):
            paths = entry.get("image_path")
            bad = None if isinstance(paths, list) and all(isinstance(x, str) for x in paths) else \
                f"annotation.json {split}[{index}]: image_path is not a list of paths"
            images = [ImageRef(root=str(folder / "images"), path=x) for x in paths] if bad is None else []
            extra = {k: str(entry[k]) for k in ("study_id", "subject_id") if entry.get(k) is not None}
            sample = self.caption_sample(
                str(entry["id"]), images, [str(entry.get("report") or "")],
                {**metadata, **extra, "reference_sections": "report"},
            )
            yield sample.model_copy(update={"error": bad}) if sample is not None and bad else sample

    def caption_sample(
        self,
        sample_id: str,
        images: list[ImageRef],
        references: list[str],
        metadata: dict[str, Any],
    ) -> Optional[Sample]:
        refs = [r.strip() for r in references if r and r.strip()]
        if not refs and self.option("skip_without_reference", False):
            return None
        return Sample(
            id=sample_id, images=images, question="", references=refs, metadata=metadata,
            error=image_problem(images),
        )


def image_problem(images: list[ImageRef]) -> Optional[str]:
    """Why these images cannot be used (no image; a path leaving the data folder), or None.
    Missing files are found later by the runner, like every other unreadable image."""
    if not images:
        return "sample has no image"
    for ref in images:
        if ref.is_file():
            try:
                resolve_inside(ref.root, ref.path)
            except ImageError as exc:
                return str(exc)
    return None


def r2gen_entries(path: Path, split: str) -> list[dict[str, Any]]:
    try:
        annotation = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc}); re-download it") from None
    if not isinstance(annotation, dict):
        raise UserError(f"{path}: expected {{split: [entries]}} as R2Gen writes it; re-download it")
    if split not in annotation:
        raise UserError(f"{path} has no split {split!r}; it has {', '.join(annotation)}")
    entries = annotation[split]
    for index, entry in enumerate(entries if isinstance(entries, list) else [None]):
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            raise UserError(f"{path}: {split}[{index}] has no id; R2Gen's entries are {{id, report, image_path, ...}}")
    return entries


def modality(value: str, source: str, evidence: Optional[str] = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"modality": value, "modality_source": source}
    if evidence:
        fields["modality_evidence"] = evidence
    return fields


def open_text(path: Path):
    """A text file, gunzipped if its name ends in .gz."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    try:
        with open_text(path) as handle:
            return list(csv.DictReader(handle, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read ({exc}); re-download or re-extract it") from None


def first_existing(folder: Path, names: list[str]) -> Optional[Path]:
    for name in names:
        if (folder / name).exists():
            return folder / name
    return None
