"""IU X-Ray (Indiana University chest X-rays, Open-i): report generation from the study's
frontal and lateral images.

Two local layouts are read, told apart by their files:
- R2Gen (`annotation.json` + `images/<id>/0.png, 1.png`): splits train / val / test
  (2,069 / 296 / 590 studies); the reference is R2Gen's `report` text as given.
- Open-i release (`ecgen-radiology/*.xml` + `NLMCXR_png/*.png`): one split, `all`; the reference
  is composed from the report's sections. Card options: `sections` (default
  [findings, impression]) and `section_labels` (default true: "Findings: ... Impression: ...").
Every image of a study goes into `Sample.images`, in the file's order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import card_modality
from medharness.tasks.caption_common import CaptionTask, LabelledCaptionOptions

SECTIONS = ("findings", "impression")
LAYOUTS = "annotation.json + images/ (R2Gen layout) or ecgen-radiology/ + NLMCXR_png/ (Open-i layout)"


class IUXrayOptions(LabelledCaptionOptions):
    sections: Optional[list[str]] = None
    section_labels: Optional[bool] = None


class IUXray(CaptionTask):
    Options = IUXrayOptions

    def samples(self, data_dir: Optional[Path], split: str) -> Iterator[Optional[Sample]]:
        folder = self.local_folder(data_dir, LAYOUTS)
        if (folder / "annotation.json").exists():
            yield from self.r2gen(folder, split)
        elif (folder / "ecgen-radiology").is_dir():
            yield from self.openi(folder, split)
        else:
            raise UserError(f"{folder}: no annotation.json or ecgen-radiology/ here; expected {LAYOUTS}")

    def r2gen(self, folder: Path, split: str) -> Iterator[Optional[Sample]]:
        self.refuse_options(("sections", "section_labels"), "R2Gen layout", "Open-i layout")
        yield from self.r2gen_samples(folder, split, card_modality(self.options, {}))

    def openi(self, folder: Path, split: str) -> Iterator[Optional[Sample]]:
        if split != "all":
            raise UserError(
                f"the Open-i release has no {split!r} split; run with --split all, or use the R2Gen layout for train/val/test"
            )
        sections = self.option("sections", list(SECTIONS))
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown or not sections:
            raise UserError(f"option sections={sections!r}: choose one or more of {', '.join(SECTIONS)}")
        labels = bool(self.option("section_labels", True))
        image_root = folder / "NLMCXR_png" if (folder / "NLMCXR_png").is_dir() else folder
        reports = sorted((folder / "ecgen-radiology").glob("*.xml"), key=lambda p: (len(p.stem), p.stem))
        for path in reports:
            study_id, texts, image_ids = read_openi_report(path)
            images = [ImageRef(root=str(image_root), path=f"{i}.png") for i in image_ids]
            reference = compose(texts, sections, labels)
            yield self.caption_sample(
                study_id, images, [reference],
                {**card_modality(self.options, {}), "reference_sections": "+".join(sections)},
            )


def read_openi_report(path: Path) -> tuple[str, dict[str, str], list[str]]:
    """(study id, {section: text}, image ids) of one Open-i report file."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as exc:
        raise UserError(f"{path}: not a readable Open-i report ({exc}); re-extract NLMCXR_reports.tgz") from None
    uid = root.find("uId")
    study_id = uid.get("id") if uid is not None and uid.get("id") else path.stem
    texts = {}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").lower()
        if label in SECTIONS and node.text and node.text.strip():
            texts[label] = " ".join(node.text.split())
    images = [node.get("id") for node in root.iter("parentImage") if node.get("id")]
    return study_id, texts, images


def compose(texts: dict[str, str], sections: list[str], labels: bool) -> str:
    """The reference from the chosen sections, in the chosen order; absent sections are skipped."""
    parts = [(s, texts[s]) for s in sections if texts.get(s)]
    if labels:
        return " ".join(f"{s.capitalize()}: {t}" for s, t in parts)
    return " ".join(t for _, t in parts)


TASK_PLUGINS.register("iuxray", IUXray)
