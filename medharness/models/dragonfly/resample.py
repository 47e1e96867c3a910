"""Pillow's 8-bit bicubic resize (`Image.resize(size)` on an RGB or L image), bit for bit, in torch.

A port of libImaging/Resample.c, so that Dragonfly's canvases can be made on the GPU:
- coefficients (`precompute_coeffs`, `normalize_coeffs_8bpc`): the bicubic filter (a = -0.5)
  with support 2 * max(1, scale), evaluated in float64 in the C code's order of operations,
  normalised per output pixel by a left-to-right sum, then rounded to integers with 22
  fractional bits (PRECISION_BITS = 32 - 8 - 2);
- two passes, horizontal first (only over the rows the vertical pass reads), then vertical,
  each output `clip8(2**21 + sum(pixel * coefficient))`: shift right by 22, clamp to 0..255.
  A pass is skipped where its size does not change, as Pillow does.
`Image.resize` calls this with the whole image as the box and no `reducing_gap` (Pillow's
default, and the reference calls `image.resize((w, h))` without one), so no `reduce()` step.

Here a pass is a banded matrix product in float64: each block of output pixels takes a window
of input pixels and a [block, window] matrix of the integer coefficients scaled by 2**-22.
That is exact, not approximate: every product (8-bit pixel times a coefficient of at most 23
significant bits) and every partial sum (a multiple of 2**-22 below 2**10) is representable
in float64's 53 bits, so any summation order, CPU BLAS or cuBLAS (float64 has no TF32 mode),
gives Pillow's integers; floor and clamp then equal clip8.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import PIL
import torch

PRECISION_BITS = 32 - 8 - 2
BICUBIC_SUPPORT = 2.0
PILLOW_MAJOR = int(PIL.__version__.split(".")[0])
BLOCK = 64  # output pixels per block: windows stay short (few zero products), matrices large enough for BLAS


Size = tuple[int, int]  # (width, height), as PIL


def bicubic_filter(x: np.ndarray) -> np.ndarray:
    """Resample.c's bicubic_filter with a = -0.5, the same float64 operations in the same order."""
    x = np.abs(x)
    inner = (1.5 * x - 2.5) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * -0.5
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


@functools.lru_cache(maxsize=256)
def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first input index [out], int64 coefficients [out, ksize]) for one axis, as Pillow's
    precompute_coeffs + normalize_coeffs_8bpc make them for the box (0, in_size)."""
    scale = float(np.float32(in_size)) / out_size  # the box edges are C floats
    filterscale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    inside = taps[None, :] < xmax[:, None]
    arg = ((xmin[:, None] + taps[None, :]).astype(np.float64) - center[:, None] + 0.5) * (1.0 / filterscale)
    weights = np.where(inside, bicubic_filter(arg), 0.0)
    total = np.cumsum(weights, axis=1)[:, -1]  # C's running sum, left to right (not pairwise)
    nonzero = total != 0.0
    weights[nonzero] /= total[nonzero, None]
    scaled = weights * (1 << PRECISION_BITS)
    fixed = np.trunc(np.where(weights < 0, -0.5 + scaled, 0.5 + scaled)).astype(np.int64)
    return xmin, np.where(inside, fixed, 0)


@functools.lru_cache(maxsize=256)
def band_matrices(in_size: int, out_size: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(window starts [blocks], float64 matrices [blocks, block, window]): output pixel
    `b * block + i` = matrices[b, i] @ input[starts[b] : starts[b] + window] (+ 1/2 for the
    rounding), the coefficients scaled by 2**-22. Rows past `out_size` are zero."""
    xmin, fixed = coefficients(in_size, out_size)
    ksize = fixed.shape[1]
    blocks = -(-out_size // block)
    first = xmin[:: block]
    last = np.minimum(xmin + ksize, in_size)[np.minimum(np.arange(1, blocks + 1) * block, out_size) - 1]
    window = int(min((last - first).max(), in_size))
    starts = np.minimum(first, in_size - window)  # windows end inside the input; xmin only grows
    matrices = np.zeros((blocks, block, window), dtype=np.float64)
    out = np.arange(out_size)
    columns = xmin[:, None] - starts[out // block][:, None] + np.arange(ksize)[None, :]
    used = fixed != 0
    rows = np.broadcast_to(out[:, None], fixed.shape)
    matrices.reshape(blocks * block, window)[rows[used], columns[used]] = np.ldexp(fixed[used].astype(np.float64), -PRECISION_BITS)
    return starts, matrices


@functools.lru_cache(maxsize=512)
def _device_band(in_size: int, out_size: int, device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(window indices, matrices, the rounding half) on `device`, built once: a tensor made
    from a Python number per call would be a blocking host-to-device copy on CUDA."""
    starts, matrices = band_matrices(in_size, out_size)
    index = torch.from_numpy(starts[:, None] + np.arange(matrices.shape[2])[None, :])
    half = torch.tensor(0.5, dtype=torch.float64)  # 2**21 / 2**22: clip8's rounding offset
    return index.to(device), torch.from_numpy(matrices).to(device), half.to(device)


def resample_axis0(values: torch.Tensor, out_size: int) -> torch.Tensor:
    """One pass along dim 0 of a float64 tensor of integer pixel values: the pass's uint8
    results (clip8) as float64, shape [out_size, *values.shape[1:]]."""
    in_size, rest = values.shape[0], values.shape[1:]
    index, matrices, half = _device_band(in_size, out_size, values.device)
    windows = values.reshape(in_size, -1)[index]  # [blocks, window, columns]
    out = torch.baddbmm(half, matrices, windows)
    out = out.reshape(-1, windows.shape[2])[:out_size]
    return out.floor_().clamp_(0, 255).reshape(out_size, *rest)


def vertical_first(in_size: Size, out_size: Size) -> bool:
    """Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
    many pixels as the width (python-pillow/Pillow#9549; found by comparing outputs, the rule
    holds on every size tried); earlier versions always run the horizontal pass first."""
    (in_width, in_height), (width, height) = in_size, out_size
    return PILLOW_MAJOR >= 13 and height < in_height and in_height - height > 2 * (in_width - width)


def resize(image: torch.Tensor, size: Size) -> torch.Tensor:
    """`Image.resize(size)` (bicubic) of an [H, W, C] uint8 image, on any device with float64
    (CPU, CUDA): [height, width, C] uint8 there, the same bytes as the installed Pillow.
    `size` is (width, height), as PIL takes it. Each pass runs over the whole other axis:
    for the whole-image box Pillow's first and last used rows are always the edges."""
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise ValueError(f"resize takes an [H, W, C] uint8 image, got shape {tuple(image.shape)} of {image.dtype}")
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"resize needs a size of at least 1x1, got {width}x{height}")
    in_size = (image.shape[1], image.shape[0])
    passes = [(1, width), (0, height)]  # (axis, size): horizontal, then vertical
    if vertical_first(in_size, size):
        passes.reverse()
    values = image.to(torch.float64)
    for axis, out_size in passes:
        if values.shape[axis] != out_size:
            values = resample_axis0(values.transpose(0, axis), out_size).transpose(0, axis)
    return values.to(torch.uint8).contiguous()
