"""Hallucination study over results/: answer bias and false "yes" on POPE, HallusionBench and
ProbMed, for every model and setting, by category and modality, and against Dragonfly's
selection ratio (the paper's "more resolution, more hallucination?").

Two rates are computed here from the runs' samples.jsonl, the same way for every benchmark (the
POPE reader, `medharness.metrics.general.yes_no`, on every item whose gold is yes or no):
- yes-ratio: share of items whose answer is read as yes (answer bias; unreadable answers are
  not yes);
- false-positive rate: among items whose gold is "no" (an object, attribute or finding that is
  not there), the share answered yes.
The benchmarks' own scores (POPE accuracy and F1, HallusionBench qAcc / fAcc / aAcc, ProbMed's
accuracies with and without the adversarial pair) are read from run.json as the runs computed
them. Items recorded as data errors (`outcome: data_error`) are left out. The selection-ratio
sentence compares the lowest and highest ratio paired, on the same gold-no items (exact McNemar).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from medharness.metrics.base import Metric
from medharness.metrics.bootstrap import item_rng, mean_ci
from medharness.metrics.general import yes_no, yes_no_gold
from medharness.metrics.grouped import group_values
from medharness.metrics.paired import Paired, compare
from medharness.report.analysis import check_tasks, richest_run
from medharness.report.document import Bullets, Document, Figure, Heading, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, format_setting, run_labels
from medharness.report.pairs import delta_text, verdict
from medharness.report.plots import bar_chart, selection_chart
from medharness.report.runs import Evaluation, Run, load_runs
from medharness.report.selection import Sweep, find_sweeps, mean_of
from medharness.report.sections import (
    VALUES_NOTE, provenance_blocks, random_weights_warning, sample_warnings, write_outputs,
)
from medharness.schema import SampleResult


@dataclass(frozen=True)
class Probe:
    metrics: tuple[str, ...]  # run.json metrics shown, the benchmark's paired scores first
    keys: tuple[str, ...]  # breakdowns, when the samples hold two or more values


PROBES = {
    "pope": Probe(("pope_accuracy", "pope_f1", "pope_precision", "pope_recall"), ("category",)),
    "hallusionbench": Probe(("hallusion_qacc", "hallusion_facc", "hallusion_aacc"),
                            ("category", "subcategory", "visual_input", "modality")),
    "probmed": Probe(("probmed_overall", "probmed_overall_no_adv", "probmed_modality", "probmed_organ",
                      "probmed_abnormality", "probmed_condition", "probmed_position", "probmed_accuracy"),
                     ("modality", "organ", "question_type")),
}
SHOWN_IN_BREAKDOWNS = 2  # benchmark metrics beside the two rates in breakdown tables
YES, FPR = "yes-ratio", "false-positive rate (gold no)"
DEFINITIONS = (
    f"{YES}: share of yes/no items whose answer reads as yes (POPE reader: the first word if yes/no, else the "
    "only one of the two present); unreadable answers are not yes. Ideal: the share of gold yes.",
    f"{FPR}: among items whose gold is no (the object, attribute or finding is absent, or the question is "
    "ProbMed's adversarial negation), the share answered yes: the hallucination rate. Lower is better.",
    "POPE: accuracy and F1 with yes as positive. HallusionBench: qAcc = question pairs (one question over the "
    "original and edited figures) all right, fAcc = figures with every question right, aAcc = questions right. "
    "ProbMed (calculate_score.py): probmed_overall = accuracy with the adversarial pairs (an image's original "
    "and negated questions all right), probmed_overall_no_adv = originals only; the drop between them is the "
    "hallucination the pairs reveal.",
)
COLUMNS = ["column", "task", "system", "model", "selection_ratio", "selection", "levels", "key", "group",
           "metric", "value", "ci_low", "ci_high", "n", "run_id"]


def usable(run: Run) -> list[SampleResult]:
    """Samples that reached the model: data errors (where the field exists) are left out."""
    return [s for s in run.samples if getattr(s, "outcome", "scored") != "data_error"]


def share(values: list[float], ids: list[str], seed: int, metric: str) -> Score:
    """The mean of `values` with a bootstrap CI seeded by the metric and the items (so the same
    items get the same interval in every table)."""
    if not values:
        return Score(None, n=0)
    array = np.asarray(values, dtype=float)
    ci = mean_ci(array, item_rng(seed, metric, ids)) if len(array) > 1 else None
    low, high = ci if ci else (None, None)
    return Score(float(array.mean()), len(array), low, high)


def rates(samples: Sequence[SampleResult], seed: int) -> tuple[Score, Score]:
    """(yes-ratio, false-positive rate) over the yes/no items, with seeded bootstrap CIs."""
    judged = [(s.id, gold, yes_no(s.prediction) == "yes") for s in samples if (gold := yes_no_gold(s))]
    negatives = [(i, said) for i, gold, said in judged if gold == "no"]
    return (share([float(said) for _, _, said in judged], [i for i, _, _ in judged], seed, "yes_ratio"),
            share([float(said) for _, said in negatives], [i for i, _ in negatives], seed, "false_positive_rate"))


def members(samples: Sequence[SampleResult], key: str) -> dict[str, list[SampleResult]]:
    groups: dict[str, list[SampleResult]] = {}
    for s in samples:
        for g in group_values(s, key):
            groups.setdefault(g, []).append(s)
    return dict(sorted(groups.items()))


def probe_of(run: Run) -> Optional[Probe]:
    """The probe whose scores the run headlines: by metric, not format (POPE is read by the
    generic parquet_vqa format, and any card with POPE's metrics is a POPE probe)."""
    return next((p for p in PROBES.values() if run.headline in p.metrics), None)


def setting(run: Run, name: str) -> Optional[str]:
    value = dict(run.system.generation).get(name)  # selection / levels: absent in older runs
    return None if value is None else format_setting(value)


def analyze_hallucination(results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None) -> list[Path]:
    """Write hallucination.md, .csv and .html; returns the files written."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    evaluations = [e for e in runs.evaluations(tasks) if probe_of(runs.runs_for(e)[0])]
    used = [r for e in evaluations for r in runs.runs_for(e)]
    labels = evaluation_labels(runs.evaluations())
    doc = Document("medharness: hallucination study (POPE, HallusionBench, ProbMed)")
    doc.add(*random_weights_warning(used), Paragraph(VALUES_NOTE, "note"), Heading("Definitions"), Bullets(DEFINITIONS))
    records: list[dict] = []
    if not evaluations:
        doc.add(Paragraph(
            "No complete runs of POPE, HallusionBench or ProbMed in the results folder, e.g. "
            "`medharness run --task pope,hallusionbench,probmed --model M`.", "warning"))
    for evaluation in evaluations:
        doc.add(*evaluation_blocks(evaluation, labels[evaluation], runs.runs_for(evaluation), records))
    sweeps = [s for s in find_sweeps(runs, tasks) if s.evaluation in evaluations]
    doc.add(Heading("More resolution, more hallucination? (Dragonfly selection ratio)"))
    if not sweeps:
        doc.add(Paragraph(
            "No selection-ratio sweeps of these benchmarks: run e.g. `medharness run --task probmed --model "
            "dragonfly-med --selection-ratio 0.25,0.5,1`.", "note"))
    for sweep in sweeps:
        doc.add(*sweep_blocks(sweep, labels[sweep.evaluation]))
    notes = sample_warnings(used)
    doc.add(*([notes] if notes else []), *provenance_blocks(runs, used))
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame["n"] = frame["n"].astype("Int64")  # a metric missing from run.json has no n: blank, not 4.0
    return write_outputs(out_dir, "hallucination", doc, frame)


def evaluation_blocks(evaluation: Evaluation, label: str, runs: list[Run], records: list[dict]) -> list:
    probe = probe_of(runs[0])
    assert probe is not None
    systems = run_labels(runs)
    metrics = [m for m in probe.metrics if any(m in r.record.metrics.overall for r in runs)]
    rows, series = [], {}
    for run in runs:
        cells = list(rates(usable(run), run.record.spec.seed))
        cells += [Score.of(run.record.metrics.overall.get(m)) for m in metrics]
        rows.append(Row([systems[run.run_id], *cells], "random" if run.system.random_weights else "measured"))
        series[systems[run.run_id]] = cells[:2 + SHOWN_IN_BREAKDOWNS]
        record_cells(records, label, evaluation, run, systems, "overall", "all samples", [YES, FPR, *metrics], cells)
    blocks: list = [Heading(label), Table(["system", YES, FPR, *metrics], rows,
                                          caption=f"{label}: answer bias, false yes and the benchmark's own scores.")]
    shown = [YES, "false-positive rate", *metrics[:SHOWN_IN_BREAKDOWNS]]
    blocks.append(Figure(bar_chart(f"{label}: answer bias and hallucination", shown, series, "x100"),
                         f"Bar chart of {', '.join(shown)} for each system, with 95 % CIs", "Whiskers: 95 % bootstrap CI."))
    fullest = richest_run(runs)
    for key in probe.keys:
        if len(members(usable(fullest), key)) > 1:
            blocks += breakdown_blocks(evaluation, label, runs, systems, key, metrics[:SHOWN_IN_BREAKDOWNS], records)
    return blocks


def breakdown_blocks(evaluation: Evaluation, label: str, runs: list[Run], systems: dict[str, str], key: str,
                     metrics: list[str], records: list[dict]) -> list:
    rows, series, groups = [], {}, list(members(usable(richest_run(runs)), key))
    for run in runs:
        by_group = members(usable(run), key)
        fprs = []
        for group in groups:
            cells = list(rates(by_group.get(group, []), run.record.spec.seed))
            cells += [Score.of(run.record.metrics.groups.get(key, {}).get(group, {}).get(m)) for m in metrics]
            fprs.append(cells[1])
            rows.append(Row([group, systems[run.run_id], *cells], "random" if run.system.random_weights else "measured"))
            record_cells(records, label, evaluation, run, systems, key, group, [YES, FPR, *metrics], cells)
        series[systems[run.run_id]] = fprs
    png = bar_chart(f"{label}: false-positive rate by {key}", groups, series, "false-positive rate x100")
    return [Heading(f"{label}: by {key}", 3),
            Table([key, "system", YES, FPR, *metrics], rows, caption=f"Per {key}; metrics from run.json where the run grouped by {key}."),
            Figure(png, f"Bar chart of the false-positive rate by {key} for each system", "Whiskers: 95 % bootstrap CI.")]


def record_cells(records: list[dict], label: str, evaluation: Evaluation, run: Run, systems: dict[str, str],
                 key: str, group: str, names: list[str], cells: list[Score]) -> None:
    for name, score in zip(names, cells):
        records.append(dict(
            column=label, task=evaluation.task, system=systems[run.run_id], model=run.system.model,
            selection_ratio=run.system.selection_ratio, selection=setting(run, "selection"), levels=setting(run, "levels"),
            key=key, group=group, metric=name, value=score.value, ci_low=score.low, ci_high=score.high, n=score.n,
            run_id=run.run_id))


def sweep_blocks(sweep: Sweep, label: str) -> list:
    probe = probe_of(sweep.runs[0])
    assert probe is not None
    overall = [rates(usable(r), r.record.spec.seed) for r in sweep.runs]
    lines: dict[str, list[Score]] = {YES: [y for y, _ in overall], FPR: [f for _, f in overall]}
    first_key = probe.keys[0]
    groups = members(usable(richest_run(sweep.runs)), first_key)
    if len(groups) > 1:
        for group in groups:
            lines[f"{FPR}, {first_key} {group}"] = [
                rates(members(usable(r), first_key).get(group, []), r.record.spec.seed)[1] for r in sweep.runs]
    headline = sweep.evaluation.headline
    lines[headline] = [Score.of(r.record.metrics.overall.get(headline)) for r in sweep.runs]
    tokens = [mean_of(r, "visual_tokens") for r in sweep.runs]
    seconds = [mean_of(r, "seconds", fresh_only=True) for r in sweep.runs]
    title = f"{label}, {sweep.model_label}: hallucination vs selection ratio"
    png = selection_chart(title, sweep.ratios, lines, "rate or score", tokens, seconds)
    headers = [f"r={format_setting(r)}" for r in sweep.ratios]
    return [Heading(f"{label}: {sweep.model_label}", 3), Paragraph(trend_text(sweep, lines[FPR], lines[YES])),
            Figure(png, f"{YES}, {FPR} and {headline} against selection ratio, with visual tokens and seconds per sample",
                   "Top: rates and headline with 95 % CIs. Bottom: visual tokens (left) and seconds (right) per sample."),
            Table(["measure", *headers], [Row([name, *scores]) for name, scores in lines.items()],
                  caption="Per selection ratio (share of high-resolution crops kept).")]


def trend_text(sweep: Sweep, fpr: list[Score], yes: list[Score]) -> str:
    low, high = sweep.ratios[0], sweep.ratios[-1]
    if fpr[0].value is None or fpr[-1].value is None:
        return f"The false-positive rate could not be computed at r={format_setting(low)} or r={format_setting(high)}."
    change = fpr[-1].value - fpr[0].value
    direction = "rises" if change > 0 else "falls" if change < 0 else "does not change"
    paired = paired_fpr(sweep.runs[0], sweep.runs[-1])
    return (f"From r={format_setting(low)} to r={format_setting(high)} the false-positive rate {direction} "
            f"({fpr[0].text()} to {fpr[-1].text()}) and the yes-ratio goes from {yes[0].text()} to {yes[-1].text()}. "
            f"Paired on the gold-no items both runs answered: {delta_text(paired)}, {verdict(paired)} at the 5 % level.")


FALSE_YES = Metric(name="false_positive_rate", definition="1 if a gold-no item is answered yes, else 0")


def paired_fpr(a: Run, b: Run) -> Paired:
    """The false-positive rate of b minus a's on the gold-no items both have (exact McNemar)."""
    def rows(run: Run) -> list[SampleResult]:
        return [SampleResult(id=s.id, scores={FALSE_YES.name: float(yes_no(s.prediction) == "yes")})
                for s in usable(run) if yes_no_gold(s) == "no"]

    return compare(rows(a), rows(b), FALSE_YES, FALSE_YES.name, a.record.spec.seed)
