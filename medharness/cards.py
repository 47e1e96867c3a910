"""Load and validate the YAML cards in tasks/ and models/ (flat data; unknown keys rejected).

Cards are read by a stricter YAML reader than `yaml.safe_load`: aliases are refused (so an
alias bomb cannot expand; nothing in a card needs one), duplicate keys are an error (instead of
the last one winning), and the file must be UTF-8 and at most MAX_CARD_BYTES. The options a
task plugin or model adapter reads are declared once, as its `Options` class (a CardOptions).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Iterable, Optional, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from medharness.errors import UserError
from medharness.registry import unknown_name_message
from medharness.schema import ModelCard, TaskCard

C = TypeVar("C", bound=BaseModel)
O = TypeVar("O", bound="CardOptions")
MAX_CARD_BYTES = 1_000_000  # the largest shipped card is ~2 KB


class CardOptions(BaseModel):
    """The `options:` one task plugin or model adapter reads, each a field with its type and
    default. Subclasses are the `Options` attribute of a plugin or adapter."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CardLoader(yaml.SafeLoader):
    """safe_load without aliases and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in cards; write the value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                line = first_line.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if line != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {line})", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def cards_root() -> Path:
    """The folder holding tasks/ and models/: $MEDHARNESS_CARDS, else the source checkout."""
    env = os.environ.get("MEDHARNESS_CARDS")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def card_paths(kind: str) -> dict[str, Path]:
    folder = cards_root() / kind
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def read_card(path: Path) -> dict[str, Any]:
    """The card's mapping as YAML gives it; any problem is one line naming the file."""
    if path.exists() and not path.is_file():  # a FIFO or device would block the read
        raise UserError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CARD_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read card: {exc.strerror or exc}") from None
    if len(raw) > MAX_CARD_BYTES:
        raise UserError(f"{path}: a card is at most {MAX_CARD_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save the card as UTF-8") from None
    try:
        data = yaml.load(text, Loader=CardLoader)  # noqa: S506 - CardLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid YAML: nested too deeply for a card") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a card must be a YAML mapping of keys to values")
    return data


def parse_card(path: Path, schema: type[C]) -> C:
    """Read one card of a known kind; any problem is one line naming the file."""
    return validate_card(path, read_card(path), schema)


def parse_any_card(path: Path) -> Union[TaskCard, ModelCard]:
    """A card whose kind its content decides: `adapter:` makes a model card, `format:` a task card."""
    data = read_card(path)
    kinds = [schema for key, schema in (("format", TaskCard), ("adapter", ModelCard)) if key in data]
    if len(kinds) != 1:
        raise UserError(f"{path}: a card has either `format:` (a task card) or `adapter:` (a model card)"
                        + (", not both" if kinds else ""))
    return validate_card(path, data, kinds[0])


def validate_card(path: Path, data: dict[str, Any], schema: type[C]) -> C:
    data.setdefault("name", path.stem)
    try:
        card = schema.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation_error(exc, schema.model_fields)}") from None
    if card.name != path.stem:  # type: ignore[attr-defined]
        raise UserError(f"{path}: name {card.name!r} differs from the file name {path.stem!r}")  # type: ignore[attr-defined]
    return card


def describe_validation_error(exc: ValidationError, known: Optional[Iterable[str]] = None, what: str = "key") -> str:
    """pydantic's first problem as one clause; an unknown key gets a did-you-mean from `known`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "card"
    if first["type"] == "extra_forbidden":
        names = sorted(known or ())
        close = difflib.get_close_matches(str(first["loc"][-1]), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "known: " + (", ".join(names) or "none")
        return f"unknown {what} {where!r}; {hint} (see docs/cards.md)"
    if first["type"] == "missing":
        return f"missing required {what} {where!r}"
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    message = first["msg"].removeprefix("Value error, ")  # our validators' own text
    return f"{what} {where!r}: {message}{more}"


def parse_options(owner: str, options: dict[str, Any], schema: type[O]) -> O:
    """A card's `options:` checked against what its plugin or adapter declares; `owner` names
    them in the one-line error ("model card 'x' (adapter hf)")."""
    try:
        return schema.model_validate(options)
    except ValidationError as exc:
        raise UserError(f"{owner}: {describe_validation_error(exc, schema.model_fields, 'option')}") from None


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
