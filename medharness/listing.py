"""`medharness list` and `medharness validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table

from medharness.cards import card_paths, parse_any_card, parse_card
from medharness.console import stdout
from medharness.errors import UserError
from medharness.registry import ADAPTERS, METRICS, TASK_PLUGINS, unknown_name_message
from medharness.schema import ModelCard, TaskCard

KINDS = ("tasks", "models", "metrics", "adapters", "formats")


def print_listing(what: Optional[str]) -> None:
    if what is not None and what not in KINDS:
        raise UserError(unknown_name_message("listing", what, KINDS))
    for kind in [what] if what else ["tasks", "models"]:
        stdout.print(LISTERS[kind]())


def task_table() -> Table:
    table = Table(title="tasks", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("format", "split", "headline", "metrics", "source"):
        table.add_column(col)
    for name, path in card_paths("tasks").items():
        try:
            card = parse_card(path, TaskCard)
        except UserError as exc:
            table.add_row(name, "[red]invalid[/red]", "", "", str(exc), "")
            continue
        source = card.source or (f"hf:{card.hf_dataset}" if card.hf_dataset else "")
        table.add_row(name, card.format, card.split, card.headline or "", ", ".join(card.metrics), source)
    return table


def model_table() -> Table:
    table = Table(title="models", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("adapter", "weights", "description"):
        table.add_column(col)
    for name, path in card_paths("models").items():
        try:
            card = parse_card(path, ModelCard)
        except UserError as exc:
            table.add_row(name, "[red]invalid[/red]", "", str(exc))
            continue
        note = " [yellow](random weights)[/yellow]" if card.random_weights else ""
        table.add_row(name, card.adapter, card.weights or "", card.description + note)
    return table


def metric_table() -> Table:
    table = Table(title="metrics", title_justify="left")
    table.add_column("name")
    table.add_column("definition")
    for name in METRICS.names():
        table.add_row(name, METRICS.get(name).definition)
    return table


def names_table(title: str, names: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    for name in names:
        table.add_row(name)
    return table


LISTERS = {
    "tasks": task_table,
    "models": model_table,
    "metrics": metric_table,
    "adapters": lambda: names_table("adapters", ADAPTERS.names()),
    "formats": lambda: names_table("task formats", TASK_PLUGINS.names()),
}


def validate_cards(paths: list[Path]) -> list[str]:
    """One line per problem; an empty list means every card is valid."""
    if not paths:
        paths = [*card_paths("tasks").values(), *card_paths("models").values()]
    problems = []
    for path in paths:
        try:
            card = parse_any_card(path)
            if isinstance(card, TaskCard):
                TASK_PLUGINS.get(card.format).check_card(card)
                outputs = {o for m in card.metrics for o in METRICS.get(m).output_names()}
                if card.headline and card.headline not in outputs:
                    raise UserError(f"headline {card.headline!r} is not one of its metrics' outputs")
                if card.split not in card.splits:
                    raise UserError(f"split {card.split!r} is not in splits {card.splits}")
            else:
                ADAPTERS.get(card.adapter).check_card(card)
        except UserError as exc:
            problems.append(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}")
    return problems
