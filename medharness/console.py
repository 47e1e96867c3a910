"""What a run shows on screen: a progress bar with samples/s and ETA, then a short summary."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from medharness.schema import RunRecord, skip_text

console = Console(stderr=True, highlight=False)  # progress, summaries, errors
stdout = Console(highlight=False)  # listings: what a user may pipe


class Progress:
    """The hook `runner.execute` calls with (done, total); keeps the last values so an
    interrupted run can say how far it got, and draws a bar when one is shown."""

    def __init__(self, update: Optional[Callable[[int, int], None]] = None) -> None:
        self.done: Optional[int] = None
        self.total: Optional[int] = None
        self.update = update

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.update is not None:
            self.update(done, total)


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Progress]:
    """Yields the hook for `runner.execute`; the bar (samples/s, ETA) only on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield Progress()
        return
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, transient=True) as bar:
        job = bar.add_task(label, total=None, rate="")
        start = {"t": time.perf_counter(), "n": None}

        def draw(done: int, total: int) -> None:
            if start["n"] is None:
                start["n"] = done
            elapsed = time.perf_counter() - start["t"]
            rate = (done - start["n"]) / elapsed if elapsed > 0 else 0.0
            bar.update(job, completed=done, total=total, rate=f"{rate:,.1f} samples/s")

        yield Progress(draw)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_summary(run_dir: str, record: RunRecord) -> None:
    spec = record.spec
    ratio = spec.generation.selection_ratio
    title = f"{spec.task} / {spec.model}" + (f" / selection ratio {ratio:g}" if ratio is not None else "")
    table = Table(title=title, title_justify="left", show_edge=False)
    for col in ("metric", "value", "95% CI", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, v in record.metrics.overall.items():
        ci = f"{fmt(v.ci[0])}-{fmt(v.ci[1])}" if v.ci else "-"
        table.add_row(name, fmt(v.value), ci, str(v.n))
    console.print(table)
    skipped = f"{record.n_skipped} skipped" + (f": {skip_text(record.skipped)}" if record.n_skipped else "")
    parts = [f"{record.n_samples} scored", skipped, f"{record.n_errors} model errors (counted wrong)", f"{record.n_cached} from cache"]
    if spec.model_card.get("random_weights"):
        parts.append("RANDOM WEIGHTS (not a real model)")
    console.print(", ".join(parts) + f" -> {run_dir}")
    for warning in record.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
