"""PEIR Gross: captions of gross pathology photographs from the PEIR digital library.

Local layout as the bioCaption / SiVL19 download scripts write it: `peir_gross_images/<file>`
and one `<split>_images.tsv` per split (train, test), each line `<image file>\\t<caption>`. The
sample id is the image file name. Captions may hold a lone carriage return (the scripts replace
only CR LF), so lines are split at LF alone and the caption keeps its text whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from medharness.errors import UserError
from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import card_modality
from medharness.tasks.caption_common import CaptionTask, LabelledCaptionOptions

LAYOUT = "peir_gross_images/ and <split>_images.tsv (bioCaption layout)"


class PeirGross(CaptionTask):
    Options = LabelledCaptionOptions

    def samples(self, data_dir: Optional[Path], split: str) -> Iterator[Optional[Sample]]:
        folder = self.local_folder(data_dir, LAYOUT)
        table = folder / f"{split}_images.tsv"
        if not table.exists():
            raise UserError(f"{table} not found; expected {LAYOUT}")
        for number, (name, caption) in enumerate(read_tsv(table), 1):
            if not name:
                raise UserError(f"{table} line {number}: no image name before the tab")
            yield self.caption_sample(
                name, [ImageRef(root=str(folder / "peir_gross_images"), path=name)], [caption],
                card_modality(self.options, {}),
            )


def read_tsv(path: Path) -> Iterator[tuple[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="\n") as handle:
            for line in handle:
                line = line.rstrip("\n").removesuffix("\r")
                if line.strip():
                    name, _, caption = line.partition("\t")
                    yield name.strip(), caption
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc}); re-download it") from None


TASK_PLUGINS.register("peir-gross", PeirGross)
