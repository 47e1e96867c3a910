"""Path-VQA: the original release (pickles + images) or the Hugging Face parquet copy.

Original layout: `qas/{train,val,test}_vqa.pkl` (lists of dicts: img_id, question_id, sent,
label {answer: score}, answer_type "yes/no"/"other", question_type) and
`images/{split}/{img_id}.jpg`. The pickles are read with a restricted unpickler.
Every image is pathology (microscopy or gross specimen): the card says so (`modality`,
`modality_source: dataset`), and names the HF copy's splits (`hf_split_names`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.records import RecordError, json_kind
from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.base import card_modality
from medharness.tasks.hub import has_parquet_layout
from medharness.tasks.medvqa_common import (
    MedVQAPlugin,
    answer_type_metadata,
    file_image,
    load_plain_pickle,
    record_samples,
    release_answer_type,
    release_id,
    release_text,
    require,
)

REQUIRED_FIELDS = ("img_id", "question_id", "sent", "label")


def ranked_answers(label: Any) -> list[str]:
    """The label dict's answers, highest score first (ties in the file's order); a list of
    answers or one answer as given. Anything else is a RecordError."""
    if isinstance(label, dict):
        for answer, score in label.items():
            if not isinstance(answer, str):
                raise RecordError(f"label answer {answer!r} is not text")
            if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
                raise RecordError(f"label score {score!r} of {answer!r} is not a number")
        return [a for a, _ in sorted(label.items(), key=lambda kv: -kv[1])]
    answers = list(label) if isinstance(label, (list, tuple)) else [label]
    if not answers or not all(isinstance(a, str) for a in answers):
        raise RecordError(f"label must map answers to scores, or list answers as text; got {json_kind(label)}")
    return answers


def optional_text(rec: dict[str, Any], field: str) -> Optional[str]:
    return None if rec.get(field) is None else release_text(rec, field)


class PathVQA(MedVQAPlugin):
    strip_answers = False

    def read(self, root: Path, split: str) -> Iterator[Sample]:
        if (root / "qas").is_dir():
            return self.read_original(root, split)
        if has_parquet_layout(root):
            return self.read_parquet(root, split)
        raise UserError(
            f"{root}: not a Path-VQA folder; expected qas/{split}_vqa.pkl with images/{split}/ "
            "(original release) or data/*.parquet (Hugging Face copy)"
        )

    def read_original(self, root: Path, split: str) -> Iterator[Sample]:
        path = root / "qas" / f"{split}_vqa.pkl"
        records = load_plain_pickle(path)
        if not isinstance(records, list):
            raise UserError(f"{path}: expected a list of question records, found {type(records).__name__}")
        return record_samples(path, records, "question_id", lambda rec: self.original_sample(root, split, rec))

    def original_sample(self, root: Path, split: str, rec: Any) -> Sample:
        rec = require(rec, REQUIRED_FIELDS, "Path-VQA")
        references = ranked_answers(rec["label"])
        image_id = release_id(rec, "img_id")
        image, error = file_image(root, f"images/{split}/{image_id}.jpg")
        metadata: dict[str, Any] = {**card_modality(self.options, {}), "language": "en"}
        metadata.update(answer_type_metadata(
            references, release_answer_type(optional_text(rec, "answer_type"), ("yes/no",), ("other",))))
        question_type = optional_text(rec, "question_type")
        if question_type is not None:
            metadata["question_type"] = question_type
        metadata["image_id"] = image_id
        return Sample(id=release_id(rec, "question_id"), images=[image], question=release_text(rec, "sent"),
                      references=references, metadata=metadata, error=error)


TASK_PLUGINS.register("pathvqa", PathVQA)
