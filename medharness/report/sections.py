"""Parts every report shares: which runs were used, which were left out and why, and writing
the Markdown / CSV / HTML files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from medharness.report.document import Bullets, Document, Heading, Paragraph, Row, Table, render_markdown
from medharness.report.html import render_html
from medharness.report.labels import run_labels
from medharness.report.output import csv_text, remove_stale_temps, write_file
from medharness.report.runs import Run, RunSet

VALUES_NOTE = (
    "Values are x100 (as papers print them) with the 95 % bootstrap confidence interval in brackets "
    "and n = items scored. \u2691 small = fewer items than the task's minimum group size: read with care."
)


RANDOM_WEIGHTS_WARNING = (
    "Rows marked 'random weights' come from models with random weights (smoke tests): "
    "their numbers say nothing about any trained model."
)


def random_weights_warning(used: list[Run]) -> list[Paragraph]:
    """The warning that heads every page built from any random-weights run."""
    return [Paragraph(RANDOM_WEIGHTS_WARNING, "warning")] if any(r.system.random_weights for r in used) else []


def run_label(run: Run) -> str:
    return run_labels([run])[run.run_id]


def provenance_blocks(runs: RunSet, used: list[Run]) -> list:
    """Runs used, runs superseded by newer ones, unfinished and unreadable runs."""
    blocks: list = [Heading("Runs")]
    labels = run_labels(used)
    blocks.append(Table(
        ["run id", "task", "system", "status", "finished", "samples", "errors"],
        [Row([r.run_id, r.evaluation.task, labels[r.run_id], r.record.status, r.record.finished or "",
              str(r.record.n_samples), str(r.record.n_errors)], "random" if r.system.random_weights else "measured")
         for r in sorted(used, key=lambda r: r.run_id)],
        caption="Runs counted in this report (newest complete run per task + model + settings).",
    ))
    superseded = [(old, new) for old, new in runs.superseded if new in used]
    if superseded:
        blocks.append(Table(
            ["superseded run", "task", "system", "finished", "replaced by"],
            [Row([old.run_id, old.evaluation.task, run_label(old), old.record.finished or "", new.run_id])
             for old, new in sorted(superseded, key=lambda pair: pair[0].run_id)],
            caption="Superseded: older complete runs of the same task, model and settings; not counted.",
        ))
    if runs.incomplete:
        blocks.append(Table(
            ["incomplete run", "task", "model", "started", "samples so far"],
            [Row([r.run_id, r.evaluation.task, r.record.spec.model, r.record.started, str(r.record.n_samples)])
             for r in sorted(runs.incomplete, key=lambda r: r.run_id)],
            caption="Not finished (status running): not counted. Run the same command again to resume.",
        ))
    if runs.unreadable:
        blocks.append(Paragraph("Folders in results/ that could not be read as runs (skipped):", "warning"))
        blocks.append(Bullets(tuple(f"{path}: {reason}" for path, reason in runs.unreadable)))
    return blocks


def sample_warnings(used: list[Run]) -> Optional[Bullets]:
    notes = tuple(w for r in used for w in r.warnings)
    return Bullets(notes) if notes else None


def write_outputs(out_dir: Path, stem: str, doc: Document, frame: pd.DataFrame, markdown: bool = True) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    written = [write_file(out_dir / f"{stem}.md", render_markdown(doc))] if markdown else []
    written.append(write_file(out_dir / f"{stem}.csv", csv_text(frame)))
    written.append(write_file(out_dir / f"{stem}.html", render_html(doc)))
    return written
