"""`jsonl`: bring your own dataset. The folder holds `<split>.jsonl`, one object per line:
  {"id": "q1", "image": "imgs/a.png" | "images": [...], "question": "...",
   "answer": "..." | "answers": [...], "answer_type": "closed"|"open", "choices": [...],
   "metadata": {"modality": "ct", ...}, "clinical": {"window_center": 40, "window_width": 400, ...}}
Image paths are relative to the folder and may not leave it. Every field is type-checked, never
converted: a record that breaks a rule is a data error of that sample (`file:line: reason`),
and the rest of the file is evaluated. With `choices`, the gold answer may be the option's
letter or its text; both become the letter, and one that is neither is a data error. DICOM and
NIfTI images (.dcm, .nii, .nii.gz) are shown as one 2-D view: the card option `clinical` and the
record's `clinical` (which wins) choose frame, slice, axis and window (medharness.clinical_images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from pydantic import ValidationError

from medharness.cards import describe_validation_error
from medharness.clinical_images import inspect, is_clinical
from medharness.errors import UserError
from medharness.images import ImageError, resolve_inside
from medharness.records import BadLine, RecordError, json_kind, json_lines, sample_id, text_problem
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
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        for number, row in json_lines(path, raw, "dataset"):
            yield self.parse(path, number, row, data_dir)

    def parse(self, path: Path, number: int, row: Any, root: Path) -> Sample:
        where = f"{path.name}:{number}"
        known_id = sample_id(row.get("id")) if isinstance(row, dict) else None
        try:
            sample = record_sample(row, root)
        except RecordError as exc:
            return Sample(id=known_id or where, error=f"{where}: {exc}", skip_reason="malformed record")
        except ValidationError as exc:
            return Sample(id=known_id or where, error=f"{where}: {describe_validation_error(exc)}", skip_reason="malformed record")
        for ref in sample.images:
            try:
                resolve_inside(root, ref.path)
            except ImageError as exc:
                return sample.model_copy(update={"error": f"{where}: {exc}", "skip_reason": exc.category})
        try:
            return self.pin_clinical_views(sample, row.get("clinical"), where)
        except RecordError as exc:
            return sample.model_copy(update={"error": f"{where}: {exc}", "skip_reason": "malformed record"})

    def pin_clinical_views(self, sample: Sample, given: Any, where: str) -> Sample:
        """Check each DICOM / NIfTI image now and pin the view every adapter will see; the view
        shown is recorded in metadata `image_views`. A bad file or bad settings in the record are
        this sample's data error; bad settings in the card stop the run."""
        card = self.option("clinical", {})
        try:
            ClinicalView(**card)
        except ValidationError as exc:
            raise UserError(f"task card {self.card.name!r}: option clinical ({describe_validation_error(exc)})") from None
        if given is not None and not isinstance(given, dict):
            raise RecordError('"clinical" must be an object such as {"window_center": 40, "window_width": 400}')
        settings = {**card, **(given or {})}
        if given and "window_center" in given:
            settings["window_width"] = given.get("window_width")
        try:
            view = ClinicalView(**settings)
        except ValidationError as exc:
            raise RecordError(f"clinical settings ({describe_validation_error(exc)})") from None
        source = "record" if given and "window_center" in given else "card"
        clinical = [i for i, ref in enumerate(sample.images) if is_clinical(ref.path)]
        if given and not clinical:
            raise RecordError("clinical settings apply to .dcm, .nii and .nii.gz images; this record has none")
        images, views = list(sample.images), []
        for i in clinical:
            ref = images[i]
            path = resolve_inside(ref.root, ref.path)
            try:
                if not path.is_file():
                    raise ImageError(f"image not found: {ref.path}", "missing image")
                pinned, shown = inspect(path, ref.path, view, source)
            except ImageError as exc:
                return sample.model_copy(update={"error": f"{where}: {exc}", "skip_reason": exc.category})
            images[i] = ref.model_copy(update={"view": pinned})
            views.append(shown)
        if not views:
            return sample
        return sample.model_copy(update={"images": images, "metadata": {**sample.metadata, "image_views": views}})


def record_sample(row: Any, root: Path) -> Sample:
    if isinstance(row, BadLine):
        raise RecordError(row.reason)
    if not isinstance(row, dict):
        raise RecordError(f"a line must be a JSON object, got {json_kind(row)}")
    sid = sample_id(row.get("id"))
    if sid is None:
        raise RecordError(f'"id" must be a non-empty string or a whole number, got {json_kind(row.get("id"))}')
    question = row.get("question", "")
    problem = text_problem(question)
    if problem:
        raise RecordError(f'"question" {problem}')
    choices = optional_texts(row, "choices")
    references = gold(row, choices)
    answer_type = row.get("answer_type")
    if answer_type not in (None, "closed", "open"):
        raise RecordError(f'"answer_type" must be "closed" or "open", got {json_kind(answer_type)}')
    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        raise RecordError(f'"metadata" must be an object, got {json_kind(metadata)}')
    return Sample(
        id=sid, question=question, references=references, answer_type=answer_type, choices=choices,
        metadata={"modality": "unknown", **metadata},
        images=[ImageRef(root=str(root), path=p) for p in image_paths(row)],
    )


def one_or_many(row: dict[str, Any], one: str, many: str) -> list[str]:
    """`one` (a string) or `many` (a list of strings), not both."""
    if one in row and many in row:
        raise RecordError(f'give "{one}" or "{many}", not both')
    if one in row:
        problem = text_problem(row[one])
        if problem:
            raise RecordError(f'"{one}" {problem}')
        return [row[one]]
    return optional_texts(row, many) or []


def optional_texts(row: dict[str, Any], field: str) -> Optional[list[str]]:
    value = row.get(field)
    if value is None:  # absent or null: not given
        return None
    if not isinstance(value, list):
        raise RecordError(f'"{field}" must be a list of strings, got {json_kind(value)}')
    for item in value:
        if not isinstance(item, str):
            raise RecordError(f'"{field}" must be a list of strings; it holds {json_kind(item)}')
    return value


def image_paths(row: dict[str, Any]) -> list[str]:
    return one_or_many(row, "image", "images")


def gold(row: dict[str, Any], choices: Optional[list[str]]) -> list[str]:
    answers = one_or_many(row, "answer", "answers")
    if not answers:
        raise RecordError('no gold answer: give "answer" (a string) or "answers" (a list of strings)')
    if choices is None:
        return answers
    if not choices:
        raise RecordError('"choices" is empty')
    if len(answers) != 1:
        raise RecordError("a multiple-choice item needs exactly one gold answer")
    return [chr(ord("A") + choice_index(answers[0], choices))]


def choice_index(answer: str, choices: list[str]) -> int:
    """The option the gold names: its letter (A, B, ...) or its text (case and surrounding
    spaces ignored). Both naming different options is ambiguous, neither is an error."""
    text = answer.strip()
    by_letter = ord(text.upper()) - ord("A") if len(text) == 1 and text.isalpha() else None
    if by_letter is not None and not 0 <= by_letter < len(choices):
        by_letter = None
    by_text = [i for i, c in enumerate(choices) if c.strip().casefold() == text.casefold()]
    if len(by_text) > 1:
        raise RecordError(f"the answer {answer!r} matches {len(by_text)} options")
    if by_letter is not None and by_text and by_text[0] != by_letter:
        raise RecordError(f"the answer {answer!r} is ambiguous: option {text.upper()} by letter, "
                          f"option {chr(ord('A') + by_text[0])} by text")
    if by_letter is None and not by_text:
        raise RecordError(f"the answer {answer!r} is neither an option's letter nor its text")
    return by_letter if by_letter is not None else by_text[0]


TASK_PLUGINS.register("jsonl", JsonlTask)
