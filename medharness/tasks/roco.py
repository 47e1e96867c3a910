"""ROCO (radiology figures from PubMed Central with their captions), and ROCOv2.

Layouts: the Hugging Face copies (`data/<split>-*.parquet` with `image`, `image_id`, `caption`
and, in ROCOv2, `cui`: eltorio/ROCO-radiology, eltorio/ROCOv2-radiology), and the original
ROCO release (`data/<split>/radiology/{captions.txt,cuis.txt,images/<id>.jpg}`). Splits: train,
validation, test.

ROCO has no modality field, so it is derived and marked `modality_source: derived`: from the
UMLS concept ids when a sample has a modality concept, else from whole-word caption keywords.
Several candidate modalities, or none, leave it `unknown`; `modality_evidence` says what decided.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.caption_common import CaptionTask, first_existing, modality
from medharness.tasks.hub import has_parquet_layout, parquet_image, parquet_rows

# UMLS concepts that name an imaging modality (their UMLS preferred names in the comments).
CUI_MODALITY = {
    "C0040405": "ct",          # X-Ray Computed Tomography
    "C0024485": "mri",         # Magnetic Resonance Imaging
    "C1306645": "xray",        # Plain x-ray
    "C0041618": "ultrasound",  # Ultrasonography
}

# Abbreviations match case-sensitively ("US" is ultrasound, "us" is not); words in any case.
# Whole words only: "duct", "infarct" and "reduction" must not read as CT.
KEYWORDS = {
    "ct": (r"\b(?:CT|CTA|HRCT|MDCT|CBCT|NCCT|CECT)\b", r"\bcomputed tomograph\w*"),
    "mri": (r"\b(?:MRI|MR|MRA|MRCP|fMRI|DWI|FLAIR)\b", r"\bmagnetic resonance\b|\bT[12][- ]weighted\b"),
    "xray": (r"\bCXR\b", r"\bx[- ]?rays?\b|\bradiograph(?:s|y|ic)?\b|\broentgenograms?\b|\bplain films?\b"),
    "ultrasound": (r"\b(?:US|USG)\b", r"\bultrasound\w*|\bultrasonograph\w*|\bsonograph\w*|\bsonograms?\b|\bechocardiogra\w*|\bdoppler\b"),
}
PATTERNS = {m: (re.compile(cased), re.compile(uncased, re.IGNORECASE)) for m, (cased, uncased) in KEYWORDS.items()}

LAYOUT = "data/<split>-*.parquet (Hugging Face copy) or data/<split>/radiology/ (original ROCO release)"


def derive_modality(cuis: list[str], caption: str) -> dict[str, Any]:
    by_cui = sorted({CUI_MODALITY[c] for c in cuis if c in CUI_MODALITY})
    if by_cui:
        evidence = "cui:" + ",".join(sorted(c for c in cuis if c in CUI_MODALITY))
        return modality(by_cui[0] if len(by_cui) == 1 else "unknown", "derived", evidence)
    found = sorted(m for m, (cased, uncased) in PATTERNS.items() if cased.search(caption) or uncased.search(caption))
    if not found:
        return modality("unknown", "derived", "no modality concept or keyword")
    return modality(found[0] if len(found) == 1 else "unknown", "derived", "keywords:" + ",".join(found))


class Roco(CaptionTask):
    def samples(self, data_dir: Optional[Path], split: str) -> Iterator[Optional[Sample]]:
        if data_dir is None:
            data_dir = self.snapshot([f"data/{split}-*.parquet"], "docs/captioning.md")
        folder = self.local_folder(data_dir, LAYOUT)
        if has_parquet_layout(folder):
            yield from self.from_parquet(folder, split)
            return
        release = first_existing(folder, [f"data/{split}/radiology", f"{split}/radiology"])
        if release is None:
            raise UserError(f"{folder}: neither data/*.parquet nor data/{split}/radiology/ found; expected {LAYOUT}")
        yield from self.from_release(release)

    def from_parquet(self, folder: Path, split: str) -> Iterator[Optional[Sample]]:
        for index, row in enumerate(parquet_rows(folder, split)):
            sample_id = str(row.get("image_id") or index)
            images, problem = parquet_image(row, sample_id)
            caption = row.get("caption") or ""
            cuis = [str(c) for c in (row.get("cui") or [])]
            sample = self.caption_sample(sample_id, images, [caption], derive_modality(cuis, caption))
            yield sample.model_copy(update={"error": problem}) if sample and problem else sample

    def from_release(self, release: Path) -> Iterator[Optional[Sample]]:
        captions = read_id_table(release / "captions.txt")
        cuis = read_id_table(release / "cuis.txt") if (release / "cuis.txt").exists() else {}
        for sample_id, fields in captions.items():
            caption = " ".join(fields)
            images = [ImageRef(root=str(release / "images"), path=f"{sample_id}.jpg")]
            yield self.caption_sample(sample_id, images, [caption], derive_modality(cuis.get(sample_id, []), caption))


def read_id_table(path: Path) -> dict[str, list[str]]:
    """`<id>\\t<field>\\t<field>...` per line (ROCO's captions.txt, cuis.txt), split at LF only."""
    table: dict[str, list[str]] = {}
    try:
        with path.open(encoding="utf-8", newline="\n") as handle:
            for line in handle:
                parts = line.rstrip("\n").removesuffix("\r").split("\t")
                if parts[0].strip():
                    table[parts[0].strip()] = [p.strip() for p in parts[1:] if p.strip()]
    except FileNotFoundError:
        raise UserError(f"{path} not found; expected {LAYOUT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc}); re-download it") from None
    return table


TASK_PLUGINS.register("roco", Roco)
