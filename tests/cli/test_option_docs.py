"""Every option a format or adapter declares is usable (its types resolve) and documented
(docs/cards.md or docs/adapters.md)."""

from __future__ import annotations

from medharness.registry import ADAPTERS, TASK_PLUGINS, discover
from tests.core.helpers import REPO


def test_every_declared_option_is_documented():
    discover()
    docs = "".join((REPO / "docs" / name).read_text(encoding="utf-8") for name in ("cards.md", "adapters.md"))
    schemas = {name: registry.get(name).Options for registry in (TASK_PLUGINS, ADAPTERS) for name in registry.names()}
    for schema in schemas.values():
        schema.model_rebuild(raise_errors=True)  # an annotation naming an unimported type fails here
    declared = {(name, field) for name, schema in schemas.items() for field in schema.model_fields}
    assert declared and not [pair for pair in sorted(declared) if f"`{pair[1]}`" not in docs]
