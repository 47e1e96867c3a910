"""`jsonl`: bring your own dataset. The folder holds `<split>.jsonl`, one object per line:
  {"id": "q1", "image": "imgs/a.png" | "images": [...], "question": "...",
   "answer": "..." | "answers": [...], "answer_type": "closed"|"open", "choices": [...],
   "metadata": {"modality": "ct", ...}}
Image paths are relative to the folder and may not leave it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

from pydantic import ValidationError

from medharness.cards import describe_validation_error
from medharness.errors import UserError
from medharness.images import ImageError, resolve_inside
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import TaskPlugin


class JsonlTask(TaskPlugin):
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
        return sample


TASK_PLUGINS.register("jsonl", JsonlTask)
