"""SLAKE: `train.json` / `validation.json` / `test.json` with the images either extracted
(`imgs/<img_name>`, the original release) or still in `imgs.zip` (the Hugging Face repository
BoKelvin/SLAKE, which holds the release's files rather than a parquet table).

The card's `options.language` ("en" or "zh") keeps one language. Modality comes from the data
(CT / MRI / X-Ray, respelled by the card's `modality_map`), organ from `location`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import ModalityOptions, card_modality
from medharness.tasks.medvqa_common import (
    MedVQAPlugin, answer_type_metadata, file_image, read_json_list, record_samples, release_answer_type, release_id,
    release_text, require, safe_member,
)

SPLIT_FILES = {"train": "train.json", "val": "validation.json", "test": "test.json"}
REQUIRED_FIELDS = ("qid", "img_name", "question", "answer", "q_lang")


class ZipImages:
    """Image bytes from imgs.zip, read once per image; members are `imgs/<name>` or `<name>`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.names = set(archive.namelist())
        self.cache: dict[str, bytes] = {}

    def image(self, img_name: str) -> tuple[list[ImageRef], Optional[str]]:
        name = safe_member(img_name)
        if name is None:
            # The reference is never opened (the sample is a data error); it lets the image gate
            # give the category, "path outside the data folder".
            return [ImageRef(root=str(self.path.parent), path=img_name)], f"image path {img_name!r} escapes the image archive"
        member = next((m for m in (f"imgs/{name}", name) if m in self.names), None)
        if member is None:
            return [], f"image not found in imgs.zip: {img_name}"
        if member not in self.cache:
            with zipfile.ZipFile(self.path) as archive:
                self.cache[member] = archive.read(member)
        return [ImageRef(path=member, data=self.cache[member])], None


class SlakeOptions(ModalityOptions):
    language: Optional[Literal["en", "zh", "all"]] = "en"  # null or "all": both languages


class SLAKE(MedVQAPlugin):
    Options = SlakeOptions

    def hf_patterns(self, split: str) -> list[str]:
        return [SPLIT_FILES[split], "imgs.zip"]

    def language(self) -> Optional[str]:
        value = self.options.language
        return None if value in (None, "all") else str(value)

    def read(self, root: Path, split: str) -> Iterator[Sample]:
        path = root / SPLIT_FILES[split]
        if not path.is_file():
            raise UserError(f"{root}: not a SLAKE folder; expected {SPLIT_FILES[split]} beside imgs/ or imgs.zip")
        images = image_source(root)
        records = read_json_list(path)
        language = self.language()

        def build(rec: Any) -> Optional[Sample]:
            rec = require(rec, REQUIRED_FIELDS, "SLAKE")
            if language is not None and release_text(rec, "q_lang").strip().lower() != language:
                return None
            refs, error = images(release_text(rec, "img_name"))
            return sample(rec, refs, error, self.options)

        return record_samples(path, records, "qid", build)


def image_source(root: Path) -> Callable[[str], tuple[list[ImageRef], Optional[str]]]:
    if (root / "imgs").is_dir():
        def from_folder(img_name: str) -> tuple[list[ImageRef], Optional[str]]:
            ref, error = file_image(root, f"imgs/{img_name}")
            return [ref], error

        return from_folder
    if (root / "imgs.zip").is_file():
        return ZipImages(root / "imgs.zip").image
    raise UserError(f"{root}: SLAKE images missing; expected the imgs/ folder or imgs.zip")


def sample(rec: dict[str, Any], images: list[ImageRef], error: Optional[str], options: SlakeOptions) -> Sample:
    references = [release_text(rec, "answer").strip()]
    metadata: dict[str, Any] = {
        **card_modality(options, {"modality": str(rec.get("modality") or "").strip().lower()}),
        "organ": str(rec.get("location") or "").strip().lower() or None,
        "content_type": str(rec.get("content_type") or "").strip().lower() or None,
        "base_type": rec.get("base_type"),
        "language": str(rec["q_lang"]).strip().lower(),
        "image_id": None if rec.get("img_id") is None else str(rec["img_id"]),
    }
    metadata.update(answer_type_metadata(
        references, release_answer_type(rec.get("answer_type"), ("closed",), ("open",))))
    return Sample(id=release_id(rec, "qid"), images=images, question=release_text(rec, "question"),
                  references=references, metadata=metadata, error=error)


TASK_PLUGINS.register("slake", SLAKE)
