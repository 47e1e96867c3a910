"""Dragonfly and Dragonfly-Med, both generations (docs/dragonfly.md).

Import-light: the registry imports `adapter` only; the model classes load torch and
transformers on first access.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "DragonflyConfig": "medharness.models.dragonfly.configuration",
    "DragonflyForCausalLM": "medharness.models.dragonfly.modeling",
    "DragonflyProcessor": "medharness.models.dragonfly.processing",
    "DragonflyImageProcessor": "medharness.models.dragonfly.image_processing",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
