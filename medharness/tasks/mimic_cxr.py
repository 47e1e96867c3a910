"""MIMIC-CXR report generation from chest X-rays. Credentialed data: only a local copy is read,
never a download. Two layouts, told apart by their files:

PhysioNet (MIMIC-CXR-JPG with the MIMIC-CXR reports extracted into the same tree):
  mimic-cxr-2.0.0-split.csv[.gz]      dicom_id, study_id, subject_id, split (train/validate/test)
  mimic-cxr-2.0.0-metadata.csv[.gz]   optional: ViewPosition per dicom_id (orders and filters views)
  files/pXX/pSUBJECT/sSTUDY/DICOM.jpg the images
  files/pXX/pSUBJECT/sSTUDY.txt       the free-text report (from mimic-cxr-reports.zip)
  One sample per study (id = study_id), all its images; the reference is the report's sections
  named by the option `sections` (default [findings]); `views` keeps ViewPosition values
  (default all; frontal views first, then lateral, then the rest).
R2Gen (the preprocessed copy of R2Gen / R2GenCMN and their successors):
  annotation.json                     {train, val, test: [{id, study_id, subject_id, report,
                                      image_path: [pXX/pSUBJECT/sSTUDY/DICOM.jpg], split}]}
  images/pXX/pSUBJECT/sSTUDY/DICOM.jpg
  One sample per entry, i.e. per image (id = the DICOM id, as R2Gen's own evaluation); the
  reference is R2Gen's `report` as given. `sections` and `views` need the PhysioNet layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import card_modality
from medharness.tasks.caption_common import CaptionTask, LabelledCaptionOptions, first_existing, read_csv_rows

SPLIT_FILES = ["mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-split.csv"]
METADATA_FILES = ["mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv"]
VIEW_ORDER = {"PA": 0, "AP": 1, "LATERAL": 2, "LL": 3}
SECTIONS = ("findings", "impression")
# A section header: capitals at the start of a line, then a colon ("FINDINGS:", "IMPRESSION:").
HEADER = re.compile(r"^[ \t]*([A-Z][A-Z /&()-]*[A-Z)]):", re.MULTILINE)

HOW_TO_GET = (
    "MIMIC-CXR is credentialed data: become a credentialed PhysioNet user, sign the data use "
    "agreements of MIMIC-CXR-JPG and MIMIC-CXR (physionet.org/content/mimic-cxr-jpg/, "
    "physionet.org/content/mimic-cxr/), put mimic-cxr-2.0.0-split.csv.gz, files/ with the JPGs and "
    "the extracted mimic-cxr-reports.zip in one folder (or use R2Gen's annotation.json + images/), "
    "and pass --data-dir DIR"
)
PHYSIONET_SPLITS, R2GEN_SPLITS = ("train", "validate", "test"), ("train", "val", "test")


class MimicOptions(LabelledCaptionOptions):
    sections: Optional[list[str]] = None
    views: Optional[list[str]] = None


class MimicCXR(CaptionTask):
    Options = MimicOptions

    def samples(self, data_dir: Optional[Path], split: str) -> Iterator[Optional[Sample]]:
        if data_dir is None:
            env = f" or set {self.card.data_env}" if self.card.data_env else ""
            raise UserError(f"{HOW_TO_GET}{env} (no download exists)")
        folder = Path(data_dir)
        if (folder / "annotation.json").is_file():
            yield from self.r2gen(folder, split)
            return
        split_file = first_existing(folder, SPLIT_FILES) if folder.is_dir() else None
        if split_file is None:
            raise UserError(f"{folder}: no {SPLIT_FILES[0]} or annotation.json here; {HOW_TO_GET}")
        check_split(split, PHYSIONET_SPLITS, "PhysioNet")
        sections = self.option("sections", ["findings"])
        if not sections or any(s not in SECTIONS for s in sections):
            raise UserError(f"option sections={sections!r}: choose one or more of {', '.join(SECTIONS)}")
        views = view_positions(folder)
        keep = {v.upper() for v in self.option("views") or []}
        studies: dict[str, tuple[str, list[str]]] = {}
        for row in read_csv_rows(split_file):
            if row.get("split") == split:
                studies.setdefault(row["study_id"], (row["subject_id"], []))[1].append(row["dicom_id"])
        for study_id, (subject_id, dicoms) in studies.items():
            study_dir = f"files/p{subject_id[:2]}/p{subject_id}"
            chosen = [d for d in dicoms if not keep or views.get(d, "") in keep]
            chosen.sort(key=lambda d: (VIEW_ORDER.get(views.get(d, ""), len(VIEW_ORDER)), d))
            images = [ImageRef(root=str(folder), path=f"{study_dir}/s{study_id}/{d}.jpg") for d in chosen]
            report = read_report(folder / f"{study_dir}/s{study_id}.txt")
            reference = " ".join(report_sections(report).get(s, "") for s in sections).strip()
            yield self.caption_sample(
                study_id, images, [reference],
                {**card_modality(self.options, {}), "views": [views.get(d, "unknown") for d in chosen]},
            )

    def r2gen(self, folder: Path, split: str) -> Iterator[Optional[Sample]]:
        self.refuse_options(("sections", "views"), "R2Gen layout", "PhysioNet layout")
        check_split(split, R2GEN_SPLITS, "R2Gen")
        yield from self.r2gen_samples(folder, split, card_modality(self.options, {}))


def check_split(split: str, splits: tuple[str, ...], layout: str) -> None:
    # The two layouts name the validation split differently (validate / val): say which one is here.
    if split not in splits:
        raise UserError(f"the {layout} layout has splits {', '.join(splits)}, not {split!r}; pass --split with one of them")


def view_positions(folder: Path) -> dict[str, str]:
    metadata = first_existing(folder, METADATA_FILES)
    if metadata is None:
        return {}
    return {row["dicom_id"]: (row.get("ViewPosition") or "").upper() for row in read_csv_rows(metadata)}


def read_report(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the report ({exc}); re-extract mimic-cxr-reports.zip") from None


def report_sections(report: str) -> dict[str, str]:
    """{lower-case header: text with whitespace collapsed} of a free-text report."""
    headers = list(HEADER.finditer(report))
    sections = {}
    for here, after in zip(headers, headers[1:] + [None]):
        end = after.start() if after else len(report)
        sections[here.group(1).strip().lower()] = " ".join(report[here.end():end].split())
    return sections


TASK_PLUGINS.register("mimic-cxr", MimicCXR)
