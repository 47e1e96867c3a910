"""Every option a format or adapter declares is documented (docs/cards.md or docs/adapters.md)."""

from __future__ import annotations

from medharness.registry import ADAPTERS, TASK_PLUGINS, discover
from tests.core.helpers import REPO


def test_every_declared_option_is_documented():
    discover()
    docs = "".join((REPO / "docs" / name).read_text(encoding="utf-8") for name in ("cards.md", "adapters.md"))
    declared = {(name, field) for registry in (TASK_PLUGINS, ADAPTERS) for name in registry.names()
                for field in registry.get(name).Options.model_fields}
    assert declared and not [pair for pair in sorted(declared) if f"`{pair[1]}`" not in docs]
