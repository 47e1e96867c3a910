"""The leaderboard: one column per evaluation (task + version + metric definitions) with its
headline metric, one row per system (model + settings), then one table per task with every
metric. Built from results/ alone."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from medharness.errors import UserError
from medharness.report.document import Bullets, Document, Figure, Heading, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, run_labels
from medharness.report.links import explorer_href
from medharness.report.pairs import delta_text, paired_runs
from medharness.report.plots import bar_chart
from medharness.report.published import PublishedNumber, load_published, published_path
from medharness.report.runs import Evaluation, Run, RunSet, load_runs
from medharness.report.sections import VALUES_NOTE, provenance_blocks, random_weights_warning, write_outputs
from medharness.schema import skip_text

PUBLISHED_NOTE = (
    "Rows marked 'published' are numbers printed in papers (reports/published.yaml, with sources "
    "below), not measured here; they appear only under a column of the same task, split and metric."
)


EXPLORER_NOTE = (
    "Each measured number links to the samples behind it in the explorer pages "
    "(explore-<task>.html next to this file, written by `medharness view`)."
)


def write_leaderboard(results_dir: Path, out_dir: Path, baseline: Optional[str] = None) -> list[Path]:
    """Write leaderboard.md, leaderboard.csv and leaderboard.html; returns the files written.
    With `baseline` (a system label or model name), each headline column gets a paired
    difference column against that system."""
    runs = load_runs(results_dir)
    published = load_published(published_path(out_dir))
    doc, frame = build_leaderboard(runs, published, baseline)
    return write_outputs(out_dir, "leaderboard", doc, frame)


def build_leaderboard(runs: RunSet, published: list[PublishedNumber], baseline: Optional[str] = None) -> tuple[Document, pd.DataFrame]:
    evaluations = runs.evaluations()
    columns = evaluation_labels(evaluations)
    systems = run_labels(runs.current)
    base = baseline_label(baseline, systems) if baseline else None
    doc = Document("medharness leaderboard")
    doc.add(*random_weights_warning(runs.current))
    doc.add(Paragraph(VALUES_NOTE, "note"), Paragraph(PUBLISHED_NOTE, "note"), Paragraph(EXPLORER_NOTE, "note"))
    if len({e.task for e in evaluations}) < len(evaluations):
        doc.add(Paragraph("A task appears in more than one column because its runs differ in task version, "
                          "split, sample limit, data or metric definitions; such runs are never merged.", "warning"))

    doc.add(Heading("Headline metric per task"), headline_table(runs, evaluations, columns, systems, published, base))
    if base:
        doc.add(Paragraph(BASELINE_NOTE.format(base=base), "note"))
    chart = headline_chart(runs, evaluations, columns, systems)
    if chart is not None:
        doc.add(chart)
    metrics = {e: task_metrics(e, runs.runs_for(e)) for e in evaluations}
    for evaluation in evaluations:
        doc.add(*task_blocks(runs, evaluation, columns[evaluation], systems, published, metrics[evaluation]))
    if published:
        doc.add(*published_blocks(published, metrics))
    doc.add(*provenance_blocks(runs, runs.current))
    return doc, leaderboard_frame(runs, metrics, columns, systems, published, base)


def grid(runs: RunSet, systems: dict[str, str]) -> tuple[list[str], dict[tuple[Evaluation, str], Run], set[str]]:
    """Row labels in order, (column, row label) -> run, and the labels of random-weight rows."""
    cells = {(r.evaluation, systems[r.run_id]): r for r in runs.current}
    random = {systems[r.run_id] for r in runs.current if r.system.random_weights}
    return sorted(set(systems.values())), cells, random


BASELINE_NOTE = (
    "'vs {base}' columns: the system's headline value minus {base}'s on the items both runs scored, x100, with the "
    "paired bootstrap 95 % CI (the same resampled items for both) and, for 0/1 metrics, the exact McNemar p; "
    "items only one run has (skipped records) are left out and counted."
)


def baseline_label(baseline: str, systems: dict[str, str]) -> str:
    """The row label `baseline` names: a label itself, or a model with one label."""
    labels = sorted(set(systems.values()))
    if baseline in labels:
        return baseline
    matches = sorted({label for label in labels if label.split(" ")[0] == baseline})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"--baseline {baseline!r} names {len(matches)} systems ({', '.join(matches)}); give one of them")
    raise UserError(f"--baseline {baseline!r} is no system in the results; systems: {', '.join(labels)}")


def headline_table(runs, evaluations, columns, systems, published, base: Optional[str] = None) -> Table:
    headers = ["system"]
    for e in evaluations:
        headers += [f"{columns[e]}: {e.headline}"] + ([f"{columns[e]}: vs {base}"] if base else [])
    labels, cells, random = grid(runs, systems)
    rows = []
    for label in labels:
        row: list = [label]
        for evaluation in evaluations:
            run = cells.get((evaluation, label))
            href = explorer_href(columns[evaluation], {"run": run.run_id}) if run else None
            row.append(Score.of(run.record.metrics.overall.get(evaluation.headline), href) if run else "not run")
            if base:
                row.append(baseline_cell(cells.get((evaluation, base)), run, evaluation, base))
        rows.append(Row(row, "random" if label in random else "measured"))
    rows += [Row(r.cells[:1] + [c for cell in r.cells[1:] for c in ([cell, ""] if base else [cell])], r.kind)
             for r in reference_rows(published, evaluations, lambda e: [e.headline])]
    return Table(headers, rows, caption="Rows: models and settings; columns: task and its headline metric.")


def baseline_cell(reference: Optional[Run], run: Optional[Run], evaluation: Evaluation, base: str) -> str:
    if run is None:
        return ""
    if reference is None:
        return f"{base} not run"
    if reference is run:
        return "baseline"
    return delta_text(paired_runs(reference, run, evaluation.headline))


def reference_rows(published: list[PublishedNumber], evaluations: list[Evaluation], metrics_of) -> list[Row]:
    """One row per published model; a cell only where task, split and metric all match."""
    columns = [(e, m) for e in evaluations for m in metrics_of(e)]
    rows = []
    for model in dict.fromkeys(p.model for p in published):
        cells: list = [model]
        for evaluation, metric in columns:
            match = next((p for p in published if p.model == model and matches(p, evaluation, metric)), None)
            cells.append(Score(match.fraction, note="published") if match else "")
        if any(cells[1:]):
            rows.append(Row(cells, "reference"))
    return rows


def matches(number: PublishedNumber, evaluation: Evaluation, metric: str) -> bool:
    return number.task == evaluation.task and number.split == evaluation.split and number.metric == metric


def headline_chart(runs, evaluations, columns, systems) -> Optional[Figure]:
    if not evaluations:
        return None
    labels, cells, _ = grid(runs, systems)
    series = {label: [Score.of(cells[(e, label)].record.metrics.overall.get(e.headline)) if (e, label) in cells
                      else Score(None) for e in evaluations] for label in labels}
    categories = [f"{columns[e]}\n{e.headline}" for e in evaluations]
    png = bar_chart("Headline metric per task (95 % CI)", categories, series, "value x100")
    return Figure(png, "Bar chart of each model's headline metric per task with confidence intervals",
                  "Each bar: one model and settings; whiskers: 95 % bootstrap CI; hatched: small group.")


def task_metrics(evaluation: Evaluation, runs: list[Run]) -> list[str]:
    """Headline first, then the card's order, then any extra names a corpus metric produced.
    A corpus metric's own name (a family such as coco_caption) is no column: its outputs are."""
    present = {name for run in runs for name in run.record.metrics.overall}
    names: list[str] = []
    for run in runs:
        for name in list(run.record.spec.metric_definitions) + list(run.record.metrics.overall):
            if name in present and name not in names:
                names.append(name)
    return sorted(names, key=lambda m: m != evaluation.headline)


def task_blocks(runs: RunSet, evaluation: Evaluation, label: str, systems, published, metrics: list[str]) -> list:
    members = runs.runs_for(evaluation)
    first = members[0].record.spec
    blocks: list = [Heading(f"{label} \u2014 all metrics"), Paragraph(
        f"task {evaluation.task} version {evaluation.task_version}, split {evaluation.split}, "
        f"data {first.data_source} (fingerprint {evaluation.data_fingerprint[:12]}), "
        f"{'first ' + str(evaluation.limit) + ' samples' if evaluation.limit else 'all samples'}; "
        f"headline metric: {evaluation.headline}.")]
    rows = []
    for run in members:
        href = explorer_href(label, {"run": run.run_id})
        cells: list = [systems[run.run_id]]
        cells += [Score.of(run.record.metrics.overall.get(m), href) for m in metrics]
        cells += [str(run.record.n_errors), str(run.record.n_skipped), run.run_id]
        rows.append(Row(cells, "random" if run.system.random_weights else "measured"))
    rows += [Row(r.cells + ["", "", ""], r.kind) for r in reference_rows(published, [evaluation], lambda e: metrics)]
    blocks.append(Table(["system"] + metrics + ["errors", "skipped", "run"], rows))
    skips = sorted({f"{run.run_id}: {skip_text(run.record.skipped)}" for run in members if run.record.n_skipped})
    if skips:
        blocks += [Paragraph("Skipped records (data errors: in no metric and no n):"), Bullets(tuple(skips))]
    definitions = dict(evaluation.definitions)
    blocks.append(Bullets(tuple(f"{name}: {definitions[name]}" for name in metrics if name in definitions)))
    warnings = tuple(w for run in members for w in run.record.warnings)
    if warnings:
        blocks += [Paragraph("Warnings recorded by these runs:", "warning"), Bullets(warnings)]
    return blocks


def published_blocks(published: list[PublishedNumber], metrics: dict[Evaluation, list[str]]) -> list:
    def shown(number: PublishedNumber) -> str:
        hit = any(matches(number, e, m) for e, names in metrics.items() for m in names)
        return "yes" if hit else "no (no measured column with this task, split and metric)"

    rows = [Row([p.model, p.task, p.split, p.metric, f"{p.value:g}", p.definition, p.source, p.note, shown(p)], "reference")
            for p in published]
    return [Heading("Published numbers"), Table(
        ["model", "task", "split", "metric", "value", "definition (as the source states it)", "source", "note", "shown above"],
        rows, caption="From papers and model cards; values as printed (percentage points).")]


FRAME_COLUMNS = [
    "column", "task", "task_version", "split", "metric", "headline", "kind", "system", "model",
    "selection_ratio", "value", "ci_low", "ci_high", "n", "small", "run_id", "source",
]
BASELINE_COLUMNS = ["baseline", "delta", "delta_ci_low", "delta_ci_high", "delta_p", "delta_n"]


def leaderboard_frame(runs, metrics, columns, systems, published, base: Optional[str] = None) -> pd.DataFrame:
    """Tidy rows (one per column, system and metric) in run.json units (fractions); with a
    baseline, the headline rows carry the paired difference from it."""
    records = []
    for evaluation, names in metrics.items():
        members = runs.runs_for(evaluation)
        reference = next((r for r in members if systems[r.run_id] == base), None)
        for run in members:
            for metric, value in run.record.metrics.overall.items():
                low, high = value.ci if value.ci else (None, None)
                paired = {}
                if reference is not None and reference is not run and metric == evaluation.headline:
                    delta = paired_runs(reference, run, metric)
                    paired = dict(baseline=base, delta=delta.difference, delta_ci_low=delta.ci[0] if delta.ci else None,
                                  delta_ci_high=delta.ci[1] if delta.ci else None, delta_p=delta.p_value, delta_n=delta.n)
                records.append(dict(
                    column=columns[evaluation], task=evaluation.task, task_version=evaluation.task_version,
                    split=evaluation.split, metric=metric, headline=metric == evaluation.headline,
                    kind="random weights" if run.system.random_weights else "measured",
                    system=systems[run.run_id], model=run.system.model, selection_ratio=run.system.selection_ratio,
                    value=value.value, ci_low=low, ci_high=high, n=value.n, small=value.small,
                    run_id=run.run_id, source="", **paired,
                ))
        for number in published:
            if any(matches(number, evaluation, m) for m in names):
                records.append(dict(
                    column=columns[evaluation], task=number.task, task_version=evaluation.task_version,
                    split=number.split, metric=number.metric, headline=number.metric == evaluation.headline,
                    kind="published", system=number.model, model=number.model, selection_ratio=None,
                    value=number.fraction, ci_low=None, ci_high=None, n=None, small=False,
                    run_id="", source=number.source,
                ))
    frame = pd.DataFrame.from_records(records, columns=FRAME_COLUMNS + (BASELINE_COLUMNS if base else []))
    if base:
        frame["delta_n"] = frame["delta_n"].astype("Int64")  # blank on rows without a comparison, not 38.0
    return frame
