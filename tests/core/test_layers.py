"""Imports flow down the layers (docs: DESIGN.md, "Layers"): face > runner > report > domain >
core, and inside domain tasks, models, metrics and fixtures do not import each other. Every
import is checked, module-level and inside functions alike; a new module must be given a layer
here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import medharness

PACKAGE = Path(medharness.__file__).parent
LAYERS = {  # top-level name under medharness -> rank (higher imports lower only)
    **dict.fromkeys(["__main__", "cli", "demo", "listing", "console"], 4),
    **dict.fromkeys(["runner", "distributed", "store"], 3),
    "report": 2,
    **dict.fromkeys(["tasks", "models", "metrics", "fixtures"], 1),
    **dict.fromkeys(["", "schema", "registry", "errors", "provenance", "images", "clinical_images",
                     "cards", "results", "records", "text"], 0),
}
DOMAIN = 1


def module_name(path: Path) -> str:
    parts = ["medharness", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """The medharness modules a file imports; `from medharness import store` names the module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names}
    return {m for m in found if m == "medharness" or m.startswith("medharness.")}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def wrong_edges(root: Path = PACKAGE) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        source = top(module_name(path))
        for target in sorted(imported(path)):
            high, low = LAYERS[source], LAYERS[top(target)]
            sideways = high == low == DOMAIN and source != top(target)
            if low > high or sideways:
                wrong.append(f"{module_name(path)} -> {target}")
    return wrong


def test_every_module_has_a_layer():
    unknown = {top(module_name(p)) for p in PACKAGE.rglob("*.py")} - set(LAYERS)
    assert not unknown, f"give these modules a layer in {__file__}: {sorted(unknown)}"


def test_no_import_runs_up_or_sideways():
    assert wrong_edges() == []


def test_the_walk_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "medharness"
    (fake / "metrics").mkdir(parents=True)
    (fake / "models").mkdir()
    for name in ["__init__.py", "metrics/__init__.py", "models/__init__.py", "models/judge.py", "runner.py"]:
        (fake / name).write_text("")
    (fake / "metrics" / "judged.py").write_text("def f():\n    from ..models import judge\n")
    (fake / "cards.py").write_text("import medharness.runner\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert wrong_edges(fake) == ["medharness.cards -> medharness.runner",
                                 "medharness.metrics.judged -> medharness.models.judge"]
