"""Dragonfly's canvases and crops on the CPU through the compiled kernels in `_resample.c`:
the same bytes as `Image.resize(size)` (bicubic) of the installed Pillow, and the same float32
crops as the CLIP processor, several times faster per core than PIL's resize followed by
numpy normalisation (benchmarks/dragonfly_preprocess.py).

Pillow resamples interleaved pixels one output value at a time; here every pass runs along
the outer axis of a contiguous array (the horizontal pass over the transposed image), so the
inner loop adds one input row times one coefficient to a row of int32 sums, which the
compiler vectorises. The arithmetic is Pillow's: the coefficients of `resample.coefficients`
(Pillow's float64 rules, rounded to 22 fractional bits), sums starting at 2**21, clip8 after
each pass, the pass order of `resample.vertical_first`, a pass skipped where its size does not
change. The last canvas is cut into crops and looked up in the normalisation table in one go.

The extension is built by `pip install` (setuptools, `optional`: an install without a C
compiler still works, and preprocessing then keeps PIL's resizes; `AVAILABLE` says which).
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np

from medharness.models.dragonfly.resample import Size, coefficients, vertical_first

try:
    from medharness.models.dragonfly import _resample
except ImportError:  # built without a C compiler: callers keep PIL
    _resample = None

AVAILABLE = _resample is not None


@functools.lru_cache(maxsize=256)
def _windows(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, counts, coefficients) as int32 for the kernel: Pillow reads
    min(ksize, in_size - start) taps; the coefficients past its own bound are zero."""
    xmin, fixed = coefficients(in_size, out_size)
    counts = np.minimum(fixed.shape[1], in_size - xmin)
    return (np.ascontiguousarray(xmin, dtype=np.int32), np.ascontiguousarray(counts, dtype=np.int32),
            np.ascontiguousarray(fixed, dtype=np.int32))


def _pass(values: np.ndarray, out_rows: int, transposed: bool = False) -> np.ndarray:
    """One resampling pass along axis 0 of a contiguous [rows, cols, C] uint8 array:
    [out_rows, cols, C], or with `transposed` [cols, out_rows, C]."""
    rows, cols, channels = values.shape
    starts, counts, fixed = _windows(rows, out_rows)
    out = np.empty((cols, out_rows, channels) if transposed else (out_rows, cols, channels), dtype=np.uint8)
    _resample.pass_rows(values, rows, cols * channels, out, out_rows, starts, counts, fixed, fixed.shape[1], transposed, channels)
    return out


def _transpose(values: np.ndarray) -> np.ndarray:
    """[rows, cols, C] -> [cols, rows, C], contiguous."""
    rows, cols, channels = values.shape
    out = np.empty((cols, rows, channels), dtype=np.uint8)
    _resample.transpose(values, rows, cols, channels, out)
    return out


def resize(image: np.ndarray, sizes: Sequence[Size]) -> list[np.ndarray]:
    """`Image.resize(size)` (bicubic) of an [H, W, C] uint8 array for each (width, height) in
    `sizes`: [height, width, C] uint8 arrays, the installed Pillow's bytes. The transposed
    image that horizontal passes read is made once for all sizes."""
    if _resample is None:
        raise RuntimeError("medharness was installed without its compiled resize kernel; reinstall with a C compiler present")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        # 4 channels would be RGBA, which PIL resizes with premultiplied alpha: not this arithmetic
        raise ValueError(f"resize takes an [H, W, 3] (RGB) or [H, W, 1] (L) uint8 array, got shape {image.shape} of {image.dtype}")
    image = np.ascontiguousarray(image)
    in_height, in_width = image.shape[:2]
    image_t: Optional[np.ndarray] = None  # [W, H, C], made on first need
    out = []
    for width, height in sizes:
        if width < 1 or height < 1:
            raise ValueError(f"resize needs a size of at least 1x1, got {width}x{height}")
        values = image
        passes = [("horizontal", width), ("vertical", height)]
        if vertical_first((in_width, in_height), (width, height)):
            passes.reverse()
        for axis, out_size in passes:
            if axis == "vertical" and out_size != values.shape[0]:
                values = _pass(values, out_size)
            elif axis == "horizontal" and out_size != values.shape[1]:
                if values is image:
                    image_t = _transpose(image) if image_t is None else image_t
                    source = image_t
                else:
                    source = _transpose(values)
                # along the rows of the transposed image, written back in [H, W, C] order
                values = _pass(source, out_size, transposed=True)
        out.append(image.copy() if values is image else values)  # PIL too returns a copy
    return out


def write_crops(canvas: np.ndarray, se: int, table: np.ndarray, out: np.ndarray, first: int) -> int:
    """Cut an [H, W, C] uint8 canvas into se x se crops in raster order and write them, each
    value `table[channel, byte]`, into the float32 array `out` [crops, C, se, se] from index
    `first`; returns the index after the last one."""
    height, width, channels = canvas.shape
    if out.dtype != np.float32 or not out.flags.c_contiguous or out.shape[1:] != (channels, se, se):
        raise ValueError(f"out must be a contiguous float32 [crops, {channels}, {se}, {se}] array")
    if table.dtype != np.float32 or table.shape != (channels, 256):
        raise ValueError(f"table must be float32 [{channels}, 256], got {table.dtype} {table.shape}")
    return _resample.crops(np.ascontiguousarray(canvas), height, width, channels, se, np.ascontiguousarray(table), out, first)
