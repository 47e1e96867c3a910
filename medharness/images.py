"""The one image gate: paths stay inside their data folder, only regular files are read, bytes
and pixels are bounded, and every image becomes 8-bit RGB by one documented rule.

Limits (defaults; set by environment variable, a positive integer):
  MEDHARNESS_MAX_IMAGE_BYTES   256 MiB  an encoded image larger than this is an "oversized image"
  MEDHARNESS_MAX_IMAGE_PIXELS  200 M    width x height above this is an "oversized image",
                                        refused from the header, before any pixel is decoded
Grey images of more than 8 bits (16-bit, 32-bit integer, floating point) are scaled linearly by
their actual range: the darkest pixel becomes 0, the brightest 255, so a 12-bit image stored in
16 bits keeps its contrast and nothing is clipped; a uniform image (one value) becomes black.
Palette, alpha, CMYK and the other 8-bit modes convert to RGB as PIL does.

Every failure is an ImageError whose `category` is one of schema.SkipReason and whose text names
the image as the data file gives it, never an object repr. `check_image` is the pre-model gate
the runner applies to every sample for every adapter; its verdict is cached per file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import stat
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from medharness.errors import UserError
from medharness.schema import ImageRef, ParquetCell, SkipReason

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_PIXELS = 200_000_000
BYTES_ENV = "MEDHARNESS_MAX_IMAGE_BYTES"
PIXELS_ENV = "MEDHARNESS_MAX_IMAGE_PIXELS"
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageError(Exception):
    """This sample's image cannot be used; the sample is a data error with this reason."""

    def __init__(self, message: str, category: SkipReason = "undecodable image") -> None:
        super().__init__(message)
        self.category: SkipReason = category


def limit(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{env}={raw!r}: must be a positive whole number")
    return int(raw)


def max_bytes() -> int:
    return limit(BYTES_ENV, DEFAULT_MAX_BYTES)


def max_pixels() -> int:
    return limit(PIXELS_ENV, DEFAULT_MAX_PIXELS)


def resolve_inside(root: str | Path, relative: str) -> Path:
    """The path `relative` under `root`, refusing absolute paths and `..` escapes (after
    resolving symbolic links)."""
    return _resolve_inside(str(root), relative)


@functools.lru_cache(maxsize=1 << 16)
def _resolve_inside(root: str, relative: str) -> Path:
    # Resolving walks every path component with lstat: cached, since a run asks for the same
    # few thousand paths in loading, hashing and opening.
    if not isinstance(relative, str) or not relative:
        raise ImageError("empty image path", "malformed record")
    if "\x00" in relative:
        raise ImageError(f"image path {relative!r} contains a NUL character", "malformed record")
    if os.path.isabs(relative):
        raise ImageError(f"image path {relative!r} is absolute; only paths inside the data folder are allowed",
                         "path outside the data folder")
    try:
        base = Path(root).resolve()
        target = (base / relative).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, names too long
        raise ImageError(f"image path {relative!r} cannot be resolved ({exc_reason(exc)})", "unreadable image") from None
    if target != base and base not in target.parents:
        raise ImageError(f"image path {relative!r} escapes the data folder", "path outside the data folder")
    return target


def exc_reason(exc: BaseException) -> str:
    """An exception's text without object reprs (`<_io.BytesIO object at 0x..>`), so two runs
    of the same data write the same reasons."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return re.sub(r"<[^<>]* at 0x[0-9A-Fa-f]+>", "the image data", str(text)).splitlines()[0]


def read_file(path: Path, name: str) -> bytes:
    """A regular file's bytes, size-checked before reading. Opened non-blocking and checked
    again on the open descriptor, so a FIFO or device never blocks and a file swapped after the
    first check is caught."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"image not found: {name}", "missing image") from None
    except OSError as exc:
        raise ImageError(f"image unreadable: {name}: {exc_reason(exc)}", "unreadable image") from None
    check_stat(st, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ImageError(f"image unreadable: {name}: {exc_reason(exc)}", "unreadable image") from None
    with os.fdopen(fd, "rb") as fh:
        check_stat(os.fstat(fd), name)
        try:
            data = fh.read(max_bytes() + 1)
        except OSError as exc:
            raise ImageError(f"image unreadable: {name}: {exc_reason(exc)}", "unreadable image") from None
    check_size(len(data), name)
    return data


def check_stat(st: os.stat_result, name: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
        raise ImageError(f"image is not a regular file ({kind}): {name}", "not a regular file")
    check_size(st.st_size, name)


def check_size(size: int, name: str) -> None:
    cap = max_bytes()
    if size > cap:
        raise ImageError(f"image too large ({size} bytes, over {cap}; see {BYTES_ENV}): {name}", "oversized image")


# Image columns of the last few parquet row groups read: a batch's images sit together, and
# the adapter reads them again to decode right after the plan hashed them. The Hugging Face
# hub writes image datasets in row groups of 100 rows, so this is a few megabytes.
PARQUET_ROW_GROUPS_KEPT = 4
_row_groups: OrderedDict[tuple, Any] = OrderedDict()
_row_groups_lock = threading.Lock()


def _stat(path: str | Path, name: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError:
        raise ImageError(f"image not found: {name}", "missing image") from None


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
        raise ImageError(f"image unreadable: {where}: {exc_reason(exc)}", "unreadable image") from None
    if cell.item is not None:
        value = value[cell.item] if isinstance(value, list) and cell.item < len(value) else None
    data = value.get("bytes") if isinstance(value, dict) else None
    if not data:
        raise ImageError(f"the row has no image bytes: {where}", "missing image")
    check_size(len(data), where)
    return data


def image_bytes(ref: ImageRef) -> bytes:
    if ref.data is not None:
        check_size(len(ref.data), ref.describe())
        return ref.data
    if ref.parquet is not None:
        return _parquet_bytes(ref.parquet)
    return read_file(resolve_inside(ref.root, ref.path), ref.describe())


_hash_cache: dict[tuple, str] = {}


def file_key(ref: ImageRef) -> tuple:
    """What identifies a file's content for the caches: (resolved path, size, mtime), and for a
    parquet image also its place in the file."""
    if ref.parquet is not None:
        cell = ref.parquet
        st = _stat(cell.file, cell.file)
        return (cell.file, st.st_size, st.st_mtime_ns, cell.row_group, cell.row, cell.column, cell.item)
    path = resolve_inside(ref.root, ref.path)
    st = _stat(path, ref.describe())
    return (str(path), st.st_size, st.st_mtime_ns)


def image_hash(ref: ImageRef) -> str:
    """sha256 of the encoded bytes; cached per file (path, size, mtime) and place in it."""
    if ref.data is not None:
        return hashlib.sha256(ref.data).hexdigest()
    key = file_key(ref)
    if key not in _hash_cache:
        _hash_cache[key] = hashlib.sha256(image_bytes(ref)).hexdigest()
    if ref.view is not None:  # one DICOM or NIfTI file, another frame or window: another image
        return hashlib.sha256((_hash_cache[key] + ref.view.model_dump_json()).encode()).hexdigest()
    return _hash_cache[key]


_verdicts: dict[tuple[object, Optional[str], int, int], Optional[ImageError]] = {}


def check_image(ref: ImageRef) -> None:
    """The pre-model gate: raises the ImageError `open_image` would raise (the same decode, so
    every adapter sees the same usable samples), else returns. The verdict is cached per file
    (or per content, for in-memory bytes)."""
    content = hashlib.sha256(ref.data).digest() if ref.data is not None else file_key(ref)
    key = (content, ref.view.model_dump_json() if ref.view else None, max_bytes(), max_pixels())
    if key not in _verdicts:
        from medharness import clinical_images  # imported here: it imports this module

        try:
            if clinical_images.is_clinical(ref.path):  # the reader that will show it decides
                clinical_images.render(image_bytes(ref), ref).close()
            else:
                decode(image_bytes(ref), ref.describe()).close()
            _verdicts[key] = None
        except ImageError as exc:
            _verdicts[key] = exc
    verdict = _verdicts[key]
    if verdict is not None:
        raise ImageError(str(verdict), verdict.category)


def decode(raw: bytes, name: str) -> Image.Image:
    """The decoded image (first frame), its pixel count checked from the header first. Both the
    gate and `open_image` decode here: the one place a reader for another format (DICOM,
    NIfTI) is to be dispatched by the name's suffix."""
    cap = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = cap  # PIL's own guard, for any other reader in the process
            img = Image.open(io.BytesIO(raw))
            width, height = img.size
            if width * height > cap:
                img.close()
                raise Image.DecompressionBombError(f"{width}x{height}")
            img.load()
            return img
    except Image.DecompressionBombError:
        raise ImageError(f"image too large (over {cap} pixels; see {PIXELS_ENV}): {name}", "oversized image") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"image cannot be decoded: {name}: not a recognised image format", "undecodable image") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ImageError(f"image cannot be decoded: {name}: {exc_reason(exc)}", "undecodable image") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB by the rule in the module docstring."""
    if img.mode in HIGH_DEPTH_MODES:
        values = np.asarray(img, dtype=np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        grey = np.nan_to_num(np.rint(scaled), nan=0.0, posinf=255.0, neginf=0.0).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return img.convert("RGB")


def open_image(ref: ImageRef) -> Image.Image:
    """Decode to an RGB PIL image, or raise ImageError with a reason fit for the run record."""
    name = ref.describe()
    raw = image_bytes(ref)
    from medharness import clinical_images  # imported here: it imports this module

    if clinical_images.is_clinical(ref.path):
        return fit_long_side(clinical_images.render(raw, ref), ref.max_side)
    with decode(raw, name) as img:
        try:
            return fit_long_side(to_rgb(img), ref.max_side)
        except Exception as exc:  # a mode PIL cannot convert
            raise ImageError(f"image cannot be converted to RGB: {name}: {exc_reason(exc)}", "undecodable image") from None


def fit_long_side(img: Image.Image, max_side: Optional[int]) -> Image.Image:
    """`img` downscaled (bicubic, aspect ratio kept, each side rounded, at least 1 pixel) so that
    its long side is at most `max_side`; never upscaled. The one place --image-max-side acts."""
    if max_side is None or max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC)
