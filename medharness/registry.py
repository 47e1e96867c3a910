"""One typed registry for task plugins, model adapters, metrics and fixture writers.

Plugins register themselves at import; `discover()` imports every plugin module so that the
registries are complete. Subpackages (such as `models/dragonfly/`) register from their
`adapter` module only, so listing plugins never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Generic, Iterator, TypeVar

from medharness.errors import UserError

T = TypeVar("T")

PLUGIN_PACKAGES = ("medharness.tasks", "medharness.metrics", "medharness.models", "medharness.fixtures")


class Registry(Generic[T]):
    """Name -> object, with did-you-mean answers for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        discover()
        if name not in self._items:
            raise UserError(unknown_name_message(self.kind, name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_name_message(kind: str, name: str, known: object) -> str:
    names = sorted(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        hint = "known: " + ", ".join(names) if names else "none are defined"
    return f"unknown {kind} {name!r}; {hint} (see `medharness list`)"


_discovered = False


def discover() -> None:
    """Import every plugin module once, so each registry holds all its entries."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            if info.ispkg:
                sub = f"{package_name}.{info.name}"
                if importlib.util.find_spec(f"{sub}.adapter") is not None:
                    importlib.import_module(f"{sub}.adapter")
            else:
                importlib.import_module(f"{package_name}.{info.name}")


# The registries. Values: task plugin classes, adapter classes, Metric objects, fixture writers.
TASK_PLUGINS: Registry = Registry("task format")
ADAPTERS: Registry = Registry("model adapter")
METRICS: Registry = Registry("metric")
FIXTURES: Registry = Registry("fixture")
