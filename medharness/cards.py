"""Load and validate the YAML cards in tasks/ and models/ (flat data; unknown keys rejected)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from medharness.errors import UserError
from medharness.registry import unknown_name_message
from medharness.schema import ModelCard, TaskCard

C = TypeVar("C", bound=BaseModel)


def cards_root() -> Path:
    """The folder holding tasks/ and models/: $MEDHARNESS_CARDS, else the source checkout."""
    env = os.environ.get("MEDHARNESS_CARDS")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def card_paths(kind: str) -> dict[str, Path]:
    folder = cards_root() / kind
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def parse_card(path: Path, schema: type[C]) -> C:
    """Read one card; any problem is one line naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read card: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a card must be a YAML mapping of keys to values")
    data.setdefault("name", path.stem)
    try:
        card = schema.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation_error(exc)}") from None
    if card.name != path.stem:  # type: ignore[attr-defined]
        raise UserError(f"{path}: name {card.name!r} differs from the file name {path.stem!r}")  # type: ignore[attr-defined]
    return card


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "card"
    if first["type"] == "extra_forbidden":
        return f"unknown key {where!r} (check its spelling; see docs/cards.md)"
    if first["type"] == "missing":
        return f"missing required key {where!r}"
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_task_card(name: str) -> TaskCard:
    return _load("tasks", "task", name, TaskCard)


def load_model_card(name: str) -> ModelCard:
    return _load("models", "model", name, ModelCard)


def _load(folder: str, kind: str, name: str, schema: type[C]) -> C:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return parse_card(path, schema)
    paths = card_paths(folder)
    if name not in paths:
        raise UserError(unknown_name_message(kind, name, paths))
    return parse_card(paths[name], schema)
