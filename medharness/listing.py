"""`medharness list` and `medharness validate`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text
from rich.table import Table

from medharness.cards import card_paths, parse_any_card, parse_card
from medharness.console import stdout
from medharness.errors import UserError
from medharness.registry import ADAPTERS, METRICS, TASK_PLUGINS, unknown_name_message
from medharness.schema import ModelCard, TaskCard

KINDS = ("tasks", "models", "metrics", "adapters", "formats", "show")


def natural_key(name: str) -> tuple:
    """Sort key: words alphabetically, numbers by value, a name before its longer variants
    (pope, pope-adversarial, pope-popular; slake before slake-zh; mmmu2 before mmmu10)."""
    parts = re.split(r"(\d+)|[-_.]", name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def cards(kind: str) -> list[tuple[str, Path]]:
    return sorted(card_paths(kind).items(), key=lambda item: natural_key(item[0]))


def print_listing(what: Optional[str], name: Optional[str] = None, wide: bool = False) -> None:
    if what is not None and what not in KINDS:
        raise UserError(unknown_name_message("listing", what, KINDS))
    if what == "show":
        if not name:
            raise UserError("`medharness list show NAME` needs a task or model card name")
        stdout.print(card_details(name))
        return
    if name:
        raise UserError(f"`medharness list {what}` takes no name; to see one card use `medharness list show {name}`")
    for kind in [what] if what else ["tasks", "models"]:
        stdout.print(task_table(wide) if kind == "tasks" else model_table(wide) if kind == "models" else LISTERS[kind]())


def card_table(title: str, columns: tuple[str, ...], rows: list[list[str]], wide: bool) -> RenderableType:
    """One line per card, the last column cut with an ellipsis to the terminal's width;
    --wide: every cell in full, wrapped."""
    if wide:
        table = Table(title=title, title_justify="left", box=box.HEAVY_HEAD)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        return table
    widths = [max([len(columns[i])] + [len(r[i]) for r in rows]) for i in range(len(columns) - 1)]
    room = max(stdout.width - sum(widths) - 2 * len(widths), 12)

    def line(cells: list[str]) -> str:
        last = cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "\u2026"
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + last

    lines = [Text(title, style="bold"), Text(line(list(columns)), style="underline")]
    lines += [Text(line(row)) for row in rows]
    lines.append(Text("`medharness list show NAME`: one card in full; --wide: every column", style="dim"))
    return Group(*lines)


def task_table(wide: bool = False) -> RenderableType:
    columns = ("name", "format", "split", "headline", "metrics", "source") if wide else ("name", "format", "split", "headline")
    rows = []
    for name, path in cards("tasks"):
        try:
            card = parse_card(path, TaskCard)
        except UserError as exc:
            rows.append([name, "invalid", "", str(exc), "", ""][: len(columns)])
            continue
        row = [name, card.format, card.split, card.headline or (card.metrics[0] if card.metrics else "")]
        if wide:
            row += [", ".join(card.metrics), card.source or (f"hf:{card.hf_dataset}" if card.hf_dataset else "")]
        rows.append(row)
    return card_table("tasks", columns, rows, wide)


def model_table(wide: bool = False) -> RenderableType:
    columns = ("name", "adapter", "weights", "description") if wide else ("name", "adapter", "description")
    rows = []
    for name, path in cards("models"):
        try:
            card = parse_card(path, ModelCard)
        except UserError as exc:
            rows.append([name, "invalid", *([""] if wide else []), str(exc)])
            continue
        note = "(random weights) " if card.random_weights else ""
        rows.append([name, card.adapter, *([card.weights or ""] if wide else []), note + card.description])
    return card_table("models", columns, rows, wide)


def card_details(name: str) -> Table:
    """Every field of one task or model card, one per line."""
    found = dict(cards("tasks")), dict(cards("models"))
    if name not in found[0] and name not in found[1]:
        raise UserError(unknown_name_message("card", name, [*found[0], *found[1]]))
    is_task = name in found[0]
    card = parse_card(found[0][name] if is_task else found[1][name], TaskCard if is_task else ModelCard)
    table = Table(title=f"{'task' if is_task else 'model'} {name}", title_justify="left", box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column("field", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold")
    for field, value in card.model_dump(mode="json").items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        table.add_row(field, escape(shown))
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
