"""The headline metric by modality (organ, question type, ...) for every model over results/,
and the modality helpers the other studies share (image domain, derived-modality notes)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from medharness.errors import UserError
from medharness.report.document import Document, Figure, Heading, Link, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, run_labels
from medharness.report.links import explorer_href
from medharness.report.plots import bar_chart
from medharness.report.runs import Evaluation, Run, RunSet, load_runs
from medharness.report.sections import VALUES_NOTE, provenance_blocks, random_weights_warning, write_outputs

GENERAL_MODALITIES = {"natural", "chart", "diagram", "document"}
MODALITY = "modality"


def domain_of(modality: str) -> str:
    """Biomedical or general image, from the controlled modality vocabulary."""
    if modality in GENERAL_MODALITIES:
        return "general"
    return "unknown" if modality == "unknown" else "biomedical"


def derived_modalities(run: Run) -> dict[str, tuple[int, int]]:
    """modality -> (samples whose modality was not given by the dataset, all samples of that modality).
    A card's constant ("card") is marked like a derived label: both are our reading, not the data's."""
    counts: dict[str, list[int]] = {}
    for s in run.samples:
        modality = str(s.metadata.get(MODALITY, "unknown"))
        cell = counts.setdefault(modality, [0, 0])
        cell[0] += s.metadata.get("modality_source") in ("derived", "card")
        cell[1] += 1
    return {m: (d, n) for m, (d, n) in counts.items()}


def richest_run(runs: list[Run]) -> Run:
    """The run with the most sample rows: all runs of one evaluation share the data, but a run
    may lack rows (samples.jsonl removed or damaged)."""
    return max(runs, key=lambda r: len(r.samples))


def derivation_note(run: Run) -> Paragraph:
    counts = derived_modalities(run)
    derived = {m: c for m, c in counts.items() if c[0]}
    if not counts:
        return Paragraph("No per-sample rows were found, so the source of the modality labels is unknown.", "warning")
    if not derived:
        return Paragraph("Modality labels are given by the dataset for every sample.", "note")
    parts = ", ".join(f"{m}: {d} of {n}" for m, (d, n) in sorted(derived.items()))
    total = sum(d for d, _ in derived.values())
    return Paragraph(
        f"Modality was DERIVED, not given by the dataset, for {total} of {len(run.samples)} samples ({parts}); "
        "derived modalities (a task card's constant for a whole dataset counts as derived) are approximate and "
        "marked '(derived)' below.", "warning")


def group_keys(runs: list[Run]) -> list[str]:
    """Breakdown keys, modality first, then the card's group_by order, then any others."""
    keys: list[str] = [MODALITY]
    for run in runs:
        keys += [k for k in run.record.spec.options.get("group_by") or [] if isinstance(k, str)]
        keys += list(run.record.metrics.groups)
    present = {k for run in runs for k in run.record.metrics.groups}
    return [k for k in dict.fromkeys(keys) if k in present]


def check_tasks(runs: RunSet, tasks: Optional[list[str]]) -> None:
    """A --task filter naming no task with complete runs is a mistake, not an empty report."""
    known = sorted({r.evaluation.task for r in runs.current})
    if tasks and not set(tasks) & set(known):
        raise UserError(f"no complete runs of task(s) {', '.join(tasks)} in the results folder; tasks with runs: {', '.join(known) or 'none'}")


def analyze_modality(results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None) -> list[Path]:
    """Write modality.md, modality.csv and modality.html; returns the files written."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    doc = Document("medharness: results by modality, organ and question type")
    records: list[dict] = []
    evaluations = runs.evaluations(tasks)
    doc.add(*random_weights_warning([r for e in evaluations for r in runs.runs_for(e)]), Paragraph(VALUES_NOTE, "note"))
    labels = evaluation_labels(evaluations)
    if not evaluations:
        doc.add(Paragraph(no_runs_text(tasks), "warning"))
    used = []
    for evaluation in evaluations:
        members = runs.runs_for(evaluation)
        used += members
        doc.add(*modality_blocks(evaluation, labels[evaluation], members, records))
    doc.add(*provenance_blocks(runs, used))
    return write_outputs(out_dir, "modality", doc, pd.DataFrame.from_records(records, columns=BREAKDOWN_COLUMNS))


BREAKDOWN_COLUMNS = ["column", "task", "key", "group", "derived", "system", "model", "selection_ratio",
                     "metric", "headline", "value", "ci_low", "ci_high", "n", "small", "run_id"]


def modality_blocks(evaluation: Evaluation, label: str, members: list[Run], records: list[dict]) -> list:
    systems = run_labels(members)
    fullest = richest_run(members)
    blocks: list = [Heading(f"{label}: {evaluation.headline} by group"), derivation_note(fullest)]
    derived = {m for m, (d, _) in derived_modalities(fullest).items() if d}
    keys = group_keys(members)
    if not keys:
        blocks.append(Paragraph("These runs hold no per-group results (the task card names no group_by keys).", "note"))
    for key in keys:
        values = list(dict.fromkeys(v for r in members for v in r.record.metrics.groups.get(key, {})))

        def shown(value: str) -> str:
            return f"{value} (derived)" if key == MODALITY and value in derived else value

        series = {systems[r.run_id]: [Score.of(r.record.metrics.groups.get(key, {}).get(v, {}).get(evaluation.headline),
                                               explorer_href(label, {f"g.{key}": v, "run": r.run_id}))
                                      for v in values] for r in members}
        rows = [Row([Link(shown(v), explorer_href(label, {f"g.{key}": v}))] + [series[systems[r.run_id]][i] for r in members])
                for i, v in enumerate(values)]
        blocks += [Heading(f"{label}: by {key}", 3),
                   Table([key] + [systems[r.run_id] for r in members], rows,
                         caption=f"{evaluation.headline} per {key}; columns: models and settings.")]
        png = bar_chart(f"{label}: {evaluation.headline} by {key}", [shown(v) for v in values], series, f"{evaluation.headline} x100")
        blocks.append(Figure(png, f"Bar chart of {evaluation.headline} by {key} for each model, with 95 % CIs",
                             "Whiskers: 95 % bootstrap CI; hatched: small group."))
        for run in members:
            for value, table in run.record.metrics.groups.get(key, {}).items():
                for metric, mv in table.items():
                    low, high = mv.ci if mv.ci else (None, None)
                    records.append(dict(
                        column=label, task=evaluation.task, key=key, group=value,
                        derived=key == MODALITY and value in derived, system=systems[run.run_id],
                        model=run.system.model, selection_ratio=run.system.selection_ratio, metric=metric,
                        headline=metric == evaluation.headline, value=mv.value, ci_low=low, ci_high=high,
                        n=mv.n, small=mv.small, run_id=run.run_id))
    blocks.append(examples_table(members, systems, fullest))
    return blocks


EXAMPLES = 5
CLIP = 160


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= CLIP else text[: CLIP - 1] + "\u2026"


def examples_table(members: list[Run], systems: dict[str, str], fullest: Run) -> Table:
    """The first few samples with every model's answer, so numbers can be read against text."""
    answers = {r.run_id: {s.id: (s.error and f"error: {s.error}") or s.prediction for s in r.samples} for r in members}
    rows = []
    for s in fullest.samples[:EXAMPLES]:
        cells = [s.id, str(s.metadata.get(MODALITY, "")), clip(s.prompt), clip(" | ".join(s.references))]
        cells += [clip(answers[r.run_id].get(s.id, "(no row)")) for r in members]
        rows.append(Row(cells))
    return Table(["id", MODALITY, "prompt", "references"] + [systems[r.run_id] for r in members], rows,
                 caption=f"First {EXAMPLES} samples and each model's answer (shortened to {CLIP} characters).")


def task_domain(run: Run) -> str:
    """The images' domain when all samples of known modality share one; unknown ones do not count."""
    domains = {domain_of(str(s.metadata.get(MODALITY, "unknown"))) for s in run.samples} - {"unknown"}
    return domains.pop() if len(domains) == 1 else ("mixed" if domains else "unknown")


def no_runs_text(tasks: Optional[list[str]]) -> str:
    wanted = f" for task(s) {', '.join(tasks)}" if tasks else ""
    return f"No complete runs{wanted} in the results folder."
