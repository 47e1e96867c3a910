"""ProbMed: the release's `test.json` (a list of question records) beside the image folder.

Record fields, as the authors' inference scripts read them: `id` (the image's id, shared by all
its questions), `image` (path relative to the image folder, e.g. `probmed/<name>.png`),
`image_type` (modality and organ), `qa_type` (see medharness.metrics.probmed), `question` and
`answer` (yes/no). A question has no id of its own; its sample id is `<id>_<qa_type>`, the pair
the authors' scripts use to tell answers apart.

Modality and organ come from `image_type` through the card's `modalities` {word: modality} and
`organs` lists; a word is matched after lowercasing, with "x-ray" / "x ray" read as "xray".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.base import TaskOptions
from medharness.tasks.medvqa_common import MedVQAPlugin, file_image, read_json_list

SPLIT_FILES = {"test": "test.json"}
REQUIRED_FIELDS = ("id", "image", "image_type", "qa_type", "question", "answer")
_XRAY = re.compile(r"x[\s_-]?ray")
# qa_type family -> question type as the paper's tables name it
QUESTION_TYPES = {"modality": "modality", "body_part": "organ", "abnormality": "abnormality",
                  "entity": "condition", "grounding": "position"}


def question_type(qa_type: str) -> str:
    """calculate_score.py's reading of a qa_type, in its order: "modality" or "body_part"
    contained, "abnormality" exactly, "entity" contained, anything else is grounding."""
    for name in ("modality", "body_part"):
        if name in qa_type:
            return QUESTION_TYPES[name]
    if qa_type == "abnormality":
        return "abnormality"
    return QUESTION_TYPES["entity" if "entity" in qa_type else "grounding"]


def image_type_words(image_type: str) -> list[str]:
    return re.findall(r"[a-z]+", _XRAY.sub("xray", image_type.lower()))


class ProbMedOptions(TaskOptions):
    image_folder: str = "."  # test.json's image paths are relative to it
    modalities: dict[str, str] = {}  # image_type word -> modality
    organs: list[str] = []


class ProbMed(MedVQAPlugin):
    Options = ProbMedOptions

    def hf_patterns(self, split: str) -> list[str]:
        return [SPLIT_FILES[split], f"{self.options.image_folder}/**"]

    def read(self, root: Path, split: str) -> Iterator[Sample]:
        path = root / SPLIT_FILES[split]
        if not path.is_file():
            raise UserError(f"{root}: not a ProbMed folder; expected {SPLIT_FILES[split]} beside the image folder")
        image_root = root / self.options.image_folder
        for n, rec in enumerate(read_json_list(path)):
            missing = [f for f in REQUIRED_FIELDS if not isinstance(rec, dict) or f not in rec]
            if missing:
                raise UserError(f"{path}: entry {n} lacks {', '.join(missing)}; is this ProbMed's test.json?")
            ref, error = file_image(image_root, str(rec["image"]))
            yield self.sample(rec, [ref], error)

    def sample(self, rec: dict[str, Any], images: list, error: Optional[str]) -> Sample:
        words = image_type_words(str(rec["image_type"]))
        modalities, organs = self.options.modalities, self.options.organs
        qa_type = str(rec["qa_type"])
        answer = str(rec["answer"]).strip().lower()
        return Sample(
            id=f"{rec['id']}_{qa_type}",
            images=images,
            question=str(rec["question"]),
            references=[answer],
            metadata={
                "image_id": str(rec["id"]),
                "image_type": str(rec["image_type"]),
                "qa_type": qa_type,
                "question_type": question_type(qa_type),
                "probe": "adversarial" if "hallu" in qa_type else "original",
                "modality": next((modalities[w] for w in words if w in modalities), "unknown"),
                "modality_source": "dataset",
                "organ": next((w for w in words if w in organs), None),
                "answer_type_dataset": "closed",
            },
            error=error if answer in ("yes", "no") or error else f"answer {rec['answer']!r} is not yes or no",
        )


TASK_PLUGINS.register("probmed", ProbMed)
