"""VQA-RAD: the original release (`VQA_RAD Dataset Public.json` + image folder) or the
Hugging Face parquet copy (image, question, answer only).

Splits in the release: `phrase_type` starting with "test" (test_freeform, test_para) is the
test split, the rest (freeform, para) train. Modality is not a field; the card derives it from
the organ (`modality_map` over `modality_key: organ`, labelled "derived"). The HF copy has no
organ: modality unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.base import card_modality
from medharness.tasks.hub import has_parquet_layout
from medharness.tasks.medvqa_common import (
    read_json_list,
    MedVQAPlugin,
    answer_type_metadata,
    file_image,
    record_samples,
    release_answer_type,
    release_id,
    release_text,
    require,
)

RELEASE_JSON = "VQA_RAD Dataset Public.json"
IMAGE_FOLDERS = ("VQA_RAD Image Folder", "images")  # else images sit beside the JSON
REQUIRED_FIELDS = ("qid", "image_name", "question", "answer", "phrase_type")


def release_split(phrase_type: Any) -> str:
    return "test" if str(phrase_type).strip().lower().startswith("test") else "train"


def question_types(value: Any) -> list[str]:
    """"PRES, POS" -> ["PRES", "POS"]: an item counts in each of its question types."""
    return [t.strip().upper() for t in str(value or "").split(",") if t.strip()]


def image_folder(root: Path) -> str:
    return next((f for f in IMAGE_FOLDERS if (root / f).is_dir()), ".")


class VQARAD(MedVQAPlugin):
    def read(self, root: Path, split: str) -> Iterator[Sample]:
        if (root / RELEASE_JSON).is_file():
            return self.read_original(root, split)
        if has_parquet_layout(root):
            return self.read_parquet(root, split)
        raise UserError(
            f"{root}: not a VQA-RAD folder; expected {RELEASE_JSON!r} with its image folder "
            "(original release) or data/*.parquet (Hugging Face copy)"
        )

    def read_original(self, root: Path, split: str) -> Iterator[Sample]:
        path = root / RELEASE_JSON
        records = read_json_list(path)
        folder = image_folder(root)
        def build(rec: Any) -> Optional[Sample]:
            rec = require(rec, REQUIRED_FIELDS, "VQA-RAD")
            return self.original_sample(root, folder, rec) if release_split(rec["phrase_type"]) == split else None

        return record_samples(path, records, "qid", build)

    def original_sample(self, root: Path, folder: str, rec: dict[str, Any]) -> Sample:
        references = [release_text(rec, "answer").strip()]
        organ = str(rec.get("image_organ") or "").strip().lower()
        metadata: dict[str, Any] = {
            **card_modality(self.options, {"organ": organ}),
            "organ": organ or None,
            "question_type": question_types(rec.get("question_type")),
            "language": "en",
            "paraphrase": str(rec["phrase_type"]).strip().lower().endswith("para"),
            "linked_id": None if rec.get("qid_linked_id") is None else str(rec["qid_linked_id"]),
            "phrase_type": str(rec["phrase_type"]),
        }
        metadata.update(answer_type_metadata(
            references, release_answer_type(rec.get("answer_type"), ("closed",), ("open",))))
        name = release_text(rec, "image_name")
        image, error = file_image(root, name if folder == "." else f"{folder}/{name}")
        return Sample(id=release_id(rec, "qid"), images=[image], question=release_text(rec, "question"),
                      references=references, metadata=metadata, error=error)


TASK_PLUGINS.register("vqarad", VQARAD)
