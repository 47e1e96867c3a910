"""Reading the Hugging Face parquet layout that the general-domain benchmarks share.

The lmms-lab datasets store each split as `<config>/<split>-NNNNN-of-NNNNN.parquet`, with images
as `{bytes, path}` structs (or lists of them). `ParquetTask` reads a local copy of that layout,
or the hub copy at the card's revision (cached snapshot first, via the medical tasks' shared
`hf_snapshot`), row group by row group; subclasses turn one row into a Sample. Loading reads
no image bytes: each image is a reference to its place in the parquet file, read when its batch
is planned, so a run holds a few batches' images however large the split (the benchmark
benchmarks/streaming_memory.py measures it).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any, Iterator, Optional

from medharness.errors import UserError
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import ModalityOptions, TaskPlugin, check_split, existing_folder
from medharness.tasks.hub import Row, read_rows


def is_missing(value: Any) -> bool:
    """None, NaN, or the string 'nan' that pandas-written TSV conversions leave behind."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "none")


def as_list(value: Any) -> list[Any]:
    """A list cell, or a string holding a Python list literal (MMMU's `options`), as a list."""
    if is_missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return [value]
            return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return [value]


def image_refs(cell: Any, name: str) -> list[ImageRef]:
    """The images in one image cell as `read_rows` gives it: one image or a list of them."""
    if is_missing(cell):
        return []
    cells = cell if isinstance(cell, (list, tuple)) else [cell]
    refs = []
    for i, item in enumerate(cells):
        if isinstance(item, dict) and item.get("cell"):
            label = item.get("path") or (name if len(cells) == 1 else f"{name}[{i}]")
            refs.append(ImageRef(path=str(label), parquet=item["cell"]))
    return refs


def split_files(folder: Path, config: str, split: str) -> list[Path]:
    """The parquet shards of one split: under folder/config/, or folder itself when the user
    points at the config folder."""
    for candidate in (folder / config, folder):
        files = sorted(candidate.glob(f"{split}-*.parquet")) + sorted(candidate.glob(f"{split}.parquet"))
        if files:
            return files
    return []


class ParquetOptions(ModalityOptions):
    config: Optional[str] = None
    keep: Optional[dict[str, list[Any]]] = None


class ParquetTask(TaskPlugin):
    """A task stored in the HF parquet layout. Card options used here:

    `config`: the folder of the config inside the dataset (default "data");
    `keep`: {metadata key: [values]}, keeping only samples whose metadata matches (a subset card).
    """

    config_key = "config"
    default_config = "data"
    Options = ParquetOptions

    def files_for(self, data_dir: Optional[Path], config: str, split: str) -> list[Path]:
        if data_dir is None:
            data_dir = self.snapshot([f"{config}/{split}-*.parquet"], "docs/general-benchmarks.md")
        folder = existing_folder(Path(data_dir), f"{config}/{split}-*.parquet")
        files = split_files(folder, config, split)
        if not files:
            raise UserError(
                f"no {split}-*.parquet under {folder / config} or {folder}; "
                f"expected the layout of {self.card.hf_dataset} (split names: {', '.join(self.card.splits)})"
            )
        return files

    def load(self, data_dir: Optional[Path], split: str) -> Iterator[Sample]:
        check_split(self.card, split)
        files = self.files_for(data_dir, self.option(self.config_key, self.default_config), split)
        keep = {k: set(map(str, v)) for k, v in (self.option("keep") or {}).items()}
        for index, row in enumerate(self.rows(files, data_dir, split)):
            sample = self.to_sample(row, index)
            if sample is not None and matches(sample, keep):
                yield sample

    def rows(self, files: list[Path], data_dir: Optional[Path], split: str) -> Iterator[Row]:
        return read_rows(files)

    def to_sample(self, row: Row, index: int) -> Optional[Sample]:
        raise NotImplementedError

    def with_images(self, sample_id: str, refs: list[ImageRef], missing: str = "row has no image", **fields: Any) -> Sample:
        """A Sample whose missing image is a per-sample error, not a crash of the run."""
        error = None if refs else missing
        return Sample(id=sample_id, images=refs, error=error, skip_reason="missing image" if error else None, **fields)


def matches(sample: Sample, keep: dict[str, set[str]]) -> bool:
    for key, allowed in keep.items():
        value = sample.metadata.get(key)
        values = value if isinstance(value, list) else [value]
        if not allowed.intersection(str(v) for v in values):
            return False
    return True
