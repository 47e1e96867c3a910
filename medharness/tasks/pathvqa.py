"""Path-VQA: the original release (pickles + images) or the Hugging Face parquet copy.

Original layout: `qas/{train,val,test}_vqa.pkl` (lists of dicts: img_id, question_id, sent,
label {answer: score}, answer_type "yes/no"/"other", question_type) and
`images/{split}/{img_id}.jpg`. The pickles are read with a restricted unpickler.
Every image is pathology (microscopy or gross specimen), so modality is "pathology" from the
dataset itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.hub import has_parquet_layout, parquet_image, parquet_rows
from medharness.tasks.medvqa_common import (
    MedVQAPlugin,
    answer_type_metadata,
    file_image,
    load_plain_pickle,
    release_answer_type,
)

REQUIRED_FIELDS = ("img_id", "question_id", "sent", "label")


def base_metadata() -> dict[str, Any]:
    return {"modality": "pathology", "modality_source": "dataset", "language": "en"}


def ranked_answers(label: Any) -> list[str]:
    """The label dict's answers, highest score first (ties in the file's order)."""
    if isinstance(label, dict):
        return [str(a) for a, _ in sorted(label.items(), key=lambda kv: -float(kv[1]))]
    if isinstance(label, (list, tuple)):
        return [str(a) for a in label]
    return [str(label)]


class PathVQA(MedVQAPlugin):
    hf_split_names = {"val": "validation"}

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
        for n, rec in enumerate(records):
            missing = [f for f in REQUIRED_FIELDS if not isinstance(rec, dict) or f not in rec]
            if missing:
                raise UserError(f"{path}: record {n} lacks {', '.join(missing)}; is this a Path-VQA pickle?")
            references = ranked_answers(rec["label"])
            image, error = file_image(root, f"images/{split}/{rec['img_id']}.jpg")
            metadata = base_metadata()
            metadata.update(answer_type_metadata(
                references, release_answer_type(rec.get("answer_type"), ("yes/no",), ("other",))))
            if rec.get("question_type") is not None:
                metadata["question_type"] = str(rec["question_type"])
            metadata["image_id"] = str(rec["img_id"])
            yield Sample(id=str(rec["question_id"]), images=[image], question=str(rec["sent"]),
                         references=references, metadata=metadata, error=error)

    def read_parquet(self, root: Path, split: str) -> Iterator[Sample]:
        hf_split = self.hf_split(split)
        for index, row in enumerate(parquet_rows(root, hf_split)):
            images, error = parquet_image(row, f"{hf_split}/{index}")
            references = [str(row.get("answer", ""))]
            metadata = base_metadata()
            metadata.update(answer_type_metadata(references, None))
            yield Sample(id=str(index), images=images, question=str(row.get("question", "")),
                         references=references, metadata=metadata, error=error)


TASK_PLUGINS.register("pathvqa", PathVQA)
