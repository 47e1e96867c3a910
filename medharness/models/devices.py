"""Where a local model runs: the card's `device` and `dtype`, with `auto` meaning bf16 on CUDA
and fp32 on CPU (bf16 matmuls on CPUs are slow and less exact)."""

from __future__ import annotations

from typing import Any

from medharness.errors import UserError
from medharness.schema import ModelCard

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
          "float32": "float32", "fp32": "float32"}


def device_and_dtype(card: ModelCard) -> tuple[Any, Any]:
    """(torch.device, torch.dtype) for the card; torch is imported here, not at module load."""
    import torch

    device = card.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"model card {card.name!r} asks for device {device!r} but no CUDA device is "
                        "available; set `device: auto` or `device: cpu`")
    dtype = card.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise UserError(f"model card {card.name!r}: dtype {dtype!r} is not one of auto, " + ", ".join(sorted(DTYPES)))
    return torch.device(device), getattr(torch, DTYPES[dtype])
