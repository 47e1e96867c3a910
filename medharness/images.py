"""Safe image access: paths stay inside their data folder, sizes are bounded, output is RGB."""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path
from typing import Optional

from PIL import Image

from medharness.schema import ImageRef

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


_hash_cache: dict[tuple[str, int, int], str] = {}


def image_bytes(ref: ImageRef) -> bytes:
    if ref.data is not None:
        return ref.data
    path = resolve_inside(ref.root, ref.path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"image unreadable: {path}: {exc.strerror or exc}") from None


def image_hash(ref: ImageRef) -> str:
    """sha256 of the encoded bytes; cached per (path, size, mtime) for files."""
    if ref.data is not None:
        return hashlib.sha256(ref.data).hexdigest()
    path = resolve_inside(ref.root, ref.path)
    try:
        st = path.stat()
    except OSError:
        raise ImageError(f"image not found: {path}") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = hashlib.sha256(image_bytes(ref)).hexdigest()
    return _hash_cache[key]


def open_image(ref: ImageRef) -> Image.Image:
    """Decode to an RGB PIL image, or raise ImageError with a reason fit for the run record."""
    raw = image_bytes(ref)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return fit_long_side(img.convert("RGB"), ref.max_side)
    except Image.DecompressionBombError:
        raise ImageError(f"image too large (over {MAX_PIXELS} pixels): {ref.describe()}") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ImageError(f"image cannot be decoded: {ref.describe()}: {exc}") from None


def fit_long_side(img: Image.Image, max_side: Optional[int]) -> Image.Image:
    """`img` downscaled (bicubic, aspect ratio kept, each side rounded, at least 1 pixel) so that
    its long side is at most `max_side`; never upscaled. The one place --image-max-side acts."""
    if max_side is None or max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC)
