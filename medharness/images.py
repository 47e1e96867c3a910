"""Safe image access: paths stay inside their data folder, sizes are bounded, output is RGB."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from medharness.schema import ImageRef, ParquetCell

MAX_PIXELS = 200_000_000  # above this PIL refuses the image (decompression-bomb guard)


class ImageError(Exception):
    """This sample's image cannot be used; the sample is recorded as an error with the reason."""


def resolve_inside(root: str | Path, relative: str) -> Path:
    """The path `relative` under `root`, refusing absolute paths and `..` escapes (after
    resolving symbolic links)."""
    return _resolve_inside(str(root), relative)


@functools.lru_cache(maxsize=1 << 16)
def _resolve_inside(root: str, relative: str) -> Path:
    # Resolving walks every path component with lstat: cached, since a run asks for the same
    # few thousand paths in loading, hashing and opening.
    if not relative:
        raise ImageError("empty image path")
    if os.path.isabs(relative):
        raise ImageError(f"image path {relative!r} is absolute; only paths inside the data folder are allowed")
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ImageError(f"image path {relative!r} escapes the data folder {str(base)!r}")
    return target


_hash_cache: dict[tuple, str] = {}

# Image columns of the last few parquet row groups read: a batch's images sit together, and
# the adapter reads them again to decode right after the plan hashed them. The Hugging Face
# hub writes image datasets in row groups of 100 rows, so this is a few megabytes.
PARQUET_ROW_GROUPS_KEPT = 4
_row_groups: OrderedDict[tuple, Any] = OrderedDict()
_row_groups_lock = threading.Lock()


def _stat(path: str | Path, shown: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError:
        raise ImageError(f"image not found: {shown}") from None


def _parquet_bytes(cell: ParquetCell) -> bytes:
    """One image's encoded bytes, read from its row group of the parquet file."""
    import pyarrow.parquet as pq

    where = f"{cell.file} row group {cell.row_group} row {cell.row}"
    st = _stat(cell.file, cell.file)
    key = (cell.file, st.st_size, st.st_mtime_ns, cell.row_group, cell.column)
    with _row_groups_lock:
        column = _row_groups.get(key)
        if column is not None:
            _row_groups.move_to_end(key)
    try:
        if column is None:
            with pq.ParquetFile(cell.file) as parquet:
                column = parquet.read_row_group(cell.row_group, columns=[cell.column]).column(0)
            with _row_groups_lock:
                _row_groups[key] = column
                while len(_row_groups) > PARQUET_ROW_GROUPS_KEPT:
                    _row_groups.popitem(last=False)
        value = column[cell.row].as_py()
    except (OSError, ValueError, IndexError, KeyError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ImageError(f"image unreadable: {where}: {exc}") from None
    if cell.item is not None:
        value = value[cell.item] if isinstance(value, list) and cell.item < len(value) else None
    data = value.get("bytes") if isinstance(value, dict) else None
    if not data:
        raise ImageError(f"the row has no image bytes: {where}")
    return data


def image_bytes(ref: ImageRef) -> bytes:
    if ref.data is not None:
        return ref.data
    if ref.parquet is not None:
        return _parquet_bytes(ref.parquet)
    path = resolve_inside(ref.root, ref.path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"image unreadable: {path}: {exc.strerror or exc}") from None


def image_hash(ref: ImageRef) -> str:
    """sha256 of the encoded bytes; cached per file (path, size, mtime) and place in it."""
    if ref.data is not None:
        return hashlib.sha256(ref.data).hexdigest()
    if ref.parquet is not None:
        cell = ref.parquet
        st = _stat(cell.file, cell.file)
        key: tuple = (cell.file, st.st_size, st.st_mtime_ns, cell.row_group, cell.row, cell.column, cell.item)
    else:
        path = resolve_inside(ref.root, ref.path)
        st = _stat(path, str(path))
        key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = hashlib.sha256(image_bytes(ref)).hexdigest()
    if ref.view is not None:  # one DICOM or NIfTI file, another frame or window: another image
        return hashlib.sha256((_hash_cache[key] + ref.view.model_dump_json()).encode()).hexdigest()
    return _hash_cache[key]


def open_image(ref: ImageRef) -> Image.Image:
    """Decode to an RGB PIL image, or raise ImageError with a reason fit for the run record."""
    raw = image_bytes(ref)
    from medharness import clinical_images  # imported here: it imports this module

    if clinical_images.is_clinical(ref.path):
        return clinical_images.render(raw, ref)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return img.convert("RGB")
    except Image.DecompressionBombError:
        raise ImageError(f"image too large (over {MAX_PIXELS} pixels): {ref.describe()}") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ImageError(f"image cannot be decoded: {ref.describe()}: {exc}") from None
