"""Cost study over results/: for every task and model, the headline metric against what each
setting costs per sample (visual tokens, FLOPs, seconds, peak GPU memory), one point per run
(selection ratio, strategy, levels, input resolution), with the Pareto front marked, overall and
per modality, and one sentence per task on how cost and accuracy scale.

Where the numbers come from (per sample, over rows without error):
- visual tokens: `SampleResult.visual_tokens`;
- FLOPs: `extra["cost"]["flops"]` (the adapter's analytic total; Dragonfly records it);
- seconds: `SampleResult.seconds` of fresh rows only (a cached row keeps the seconds of the run
  that computed it), with the count of fresh rows shown;
- peak memory: the largest `extra["cost"]["peak_memory_bytes"]` of the run's batches (GPU only).
A cost an adapter does not record is "not recorded", and that axis has no front.
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Optional

import pandas as pd

from medharness.report.analysis import MODALITY, check_tasks, domain_of, richest_run, task_domain
from medharness.report.document import Bullets, Document, Figure, Heading, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, format_setting, run_labels
from medharness.report.pairs import delta_text, paired_runs
from medharness.report.plots import cost_chart
from medharness.report.runs import Evaluation, Run, load_runs
from medharness.report.sections import (
    VALUES_NOTE, provenance_blocks, random_weights_warning, sample_warnings, write_outputs,
)
from medharness.report.selection import fresh_count, mean_of, rows_of

TOKENS, FLOPS, SECONDS, MEMORY = "visual tokens / sample", "GFLOPs / sample", "seconds / sample", "peak memory (MiB)"
AXES = (TOKENS, FLOPS, SECONDS, MEMORY)
SETTINGS = ("selection_ratio", "selection", "levels", "image_max_side")
DEFINITIONS = (
    f"{TOKENS}: mean visual tokens the model received per sample (rows without error).",
    f"{FLOPS}: mean analytic FLOPs per sample (extra.cost.flops, vision + projector + prefill + decode) / 1e9; "
    "only adapters that compute it (Dragonfly) record it.",
    f"{SECONDS}: mean wall seconds per sample over FRESH rows only (rows answered from the cache keep the "
    "seconds of the run that computed them); the count of fresh rows is shown.",
    f"{MEMORY}: the largest peak GPU memory of the run's batches (extra.cost.peak_memory_bytes); GPU runs only.",
    "Pareto front (per cost axis): the runs that no other run beats on both the headline metric and that cost "
    "(no cheaper run scores at least as well); marked \u2605 in the tables, ringed in the plots.",
)
COLUMNS = ["column", "task", "group", "images", "system", "model", *SETTINGS, "metric", "value", "ci_low", "ci_high",
           "n", "visual_tokens_per_sample", "gflops_per_sample", "flops_rows", "seconds_per_sample", "fresh_rows",
           "rows", "peak_memory_mib", "pareto", "run_id"]


def cost_of(run: Run, key: str, modality: Optional[str]) -> list[float]:
    values = [s.extra.get("cost", {}).get(key) for s in rows_of(run, modality)]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def costs(run: Run, modality: Optional[str]) -> dict[str, Optional[float]]:
    flops, memory = cost_of(run, "flops", modality), cost_of(run, "peak_memory_bytes", modality)
    return {TOKENS: mean_of(run, "visual_tokens", modality), FLOPS: fmean(flops) / 1e9 if flops else None,
            SECONDS: mean_of(run, "seconds", modality, fresh_only=True),
            MEMORY: max(memory) / 2**20 if memory else None}


def pareto(values: list[Optional[float]], cost: list[Optional[float]], lower_is_better: bool = False) -> set[int]:
    """Indices not dominated: no other point is at most as costly and at least as good, and
    strictly better in one of the two."""
    sign = -1.0 if lower_is_better else 1.0
    points = [(i, c, sign * v) for i, (v, c) in enumerate(zip(values, cost)) if v is not None and c is not None]
    return {i for i, c, v in points
            if not any(cj <= c and vj >= v and (cj < c or vj > v) for j, cj, vj in points if j != i)}


def analyze_cost(results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None) -> list[Path]:
    """Write cost.md, cost.csv and cost.html; returns the files written."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    evaluations = runs.evaluations(tasks)
    used = [r for e in evaluations for r in runs.runs_for(e)]
    labels = evaluation_labels(runs.evaluations())
    doc = Document("medharness: cost study (accuracy against visual tokens, FLOPs, seconds and memory)")
    doc.add(*random_weights_warning(used), Paragraph(VALUES_NOTE, "note"), Heading("Definitions"), Bullets(DEFINITIONS))
    records: list[dict] = []
    answers, details = [], []
    for evaluation in evaluations:
        members = runs.runs_for(evaluation)
        answers.append(scaling_text(labels[evaluation], evaluation, members))
        details += evaluation_blocks(evaluation, labels[evaluation], members, records)
    if evaluations:
        doc.add(Heading("How cost and accuracy scale, from the lowest to the highest setting"), Bullets(tuple(answers)))
        doc.add(*details)
    else:
        doc.add(Paragraph("No complete runs in the results folder.", "warning"))
    notes = sample_warnings(used)
    doc.add(*([notes] if notes else []), *provenance_blocks(runs, used))
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    for column in ("n", "flops_rows", "fresh_rows", "rows"):
        frame[column] = frame[column].astype("Int64")
    return write_outputs(out_dir, "cost", doc, frame)


def evaluation_blocks(evaluation: Evaluation, label: str, members: list[Run], records: list[dict]) -> list:
    headline = evaluation.headline
    systems = run_labels(members)
    lower = headline in richest_run(members).record.spec.options.get("lower_is_better", ())
    modalities = list(dict.fromkeys(m for r in members for m in r.record.metrics.groups.get(MODALITY, {})))
    blocks: list = [Heading(f"{label}: {headline} against cost")]
    for modality in [None, *modalities]:
        group = modality or "all samples"
        scores = [Score.of(r.record.metrics.overall.get(headline) if modality is None
                           else r.record.metrics.groups.get(MODALITY, {}).get(modality, {}).get(headline)) for r in members]
        measured = [costs(r, modality) for r in members]
        axes = {a: [m[a] for m in measured] for a in AXES if any(m[a] is not None for m in measured)}
        fronts = {a: pareto([s.value for s in scores], values, lower) for a, values in axes.items()}
        images = domain_of(modality) if modality else task_domain(richest_run(members))
        rows = []
        for i, run in enumerate(members):
            fresh, total = fresh_count(run, modality)
            on = [a.split(" ")[0] if a != FLOPS else "FLOPs" for a in axes if i in fronts[a]]
            cells = [systems[run.run_id], scores[i]] + [shown(measured[i][a], a) for a in AXES]
            rows.append(Row(cells[:4] + [f"{cells[4]} ({fresh} of {total} fresh)"] + cells[5:] + [
                ("\u2605 " + ", ".join(on)) if on else ""], "random" if run.system.random_weights else "measured"))
            records.append(dict(
                column=label, task=evaluation.task, group=group, images=images, system=systems[run.run_id],
                model=run.system.model, **{k: run.system.setting(k) for k in SETTINGS}, metric=headline,
                value=scores[i].value, ci_low=scores[i].low, ci_high=scores[i].high, n=scores[i].n,
                visual_tokens_per_sample=measured[i][TOKENS], gflops_per_sample=measured[i][FLOPS],
                flops_rows=len(cost_of(run, "flops", modality)), seconds_per_sample=measured[i][SECONDS],
                fresh_rows=fresh, rows=total, peak_memory_mib=measured[i][MEMORY],
                pareto=";".join(a for a in axes if i in fronts[a]), run_id=run.run_id))
        blocks += [Heading(f"{label}: {group} ({images} images)", 3), Table(
            ["system", headline, *AXES, "Pareto front"], rows,
            caption=f"One row per run (model and setting); \u2605 = on the Pareto front of that cost.")]
        if axes:
            png = cost_chart(f"{label}, {group}: {headline} against cost", headline, scores,
                             [r.system.model for r in members], axes, fronts)
            blocks.append(Figure(png, f"{headline} against {', '.join(axes)} for every run of {label} ({group}), "
                                      "Pareto front ringed", "One point per run; whiskers: 95 % bootstrap CI; "
                                      "dotted line and rings: the Pareto front."))
        else:
            blocks.append(Paragraph("No run of this task recorded any cost (visual tokens, FLOPs, seconds or memory).", "note"))
    return blocks


def shown(value: Optional[float], axis: str) -> str:
    if value is None:
        return "not recorded"
    return f"{value:.3f}" if axis == SECONDS else f"{value:.4g}" if axis == FLOPS else f"{value:.0f}"


def primary_cost(run: Run) -> tuple:
    """How a model's settings are ordered from cheapest to dearest: FLOPs where recorded, else
    visual tokens, else seconds."""
    measured = costs(run, None)
    return tuple(measured[a] if measured[a] is not None else float("inf") for a in (FLOPS, TOKENS, SECONDS))


def scaling_text(label: str, evaluation: Evaluation, members: list[Run]) -> str:
    """One sentence: per model with two or more settings, the cost and headline change from the
    cheapest to the dearest setting, with the paired difference of the headline."""
    systems = run_labels(members)
    parts = []
    for model in dict.fromkeys(r.system.model for r in members):
        own = sorted((r for r in members if r.system.model == model), key=primary_cost)
        if len(own) < 2:
            continue
        low, high = own[0], own[-1]
        a, b = costs(low, None), costs(high, None)
        changes = [f"{axis.split(' /')[0].split(' (')[0]} {factor(a[axis], b[axis])}" for axis in AXES
                   if a[axis] is not None and b[axis] is not None]
        before = Score.of(low.record.metrics.overall.get(evaluation.headline)).text()
        after = Score.of(high.record.metrics.overall.get(evaluation.headline)).text()
        delta = delta_text(paired_runs(low, high, evaluation.headline))
        parts.append(f"{model}, from {setting_name(systems[low.run_id], model)} to {setting_name(systems[high.run_id], model)}: "
                     f"{', '.join(changes) or 'no cost recorded'}; {evaluation.headline} {before} to {after} "
                     f"(paired difference {delta})")
    if not parts:
        return f"{label}: every model ran at one setting only, so nothing scales here."
    return f"{label}: " + "; ".join(parts) + "."


def setting_name(system_label: str, model: str) -> str:
    rest = system_label[len(model):].strip()
    return rest or "its default setting"


def factor(before: Optional[float], after: Optional[float]) -> str:
    if not before or after is None:
        return f"{format_setting(before)} to {format_setting(after)}"
    return f"x{after / before:.2f} ({before:.4g} to {after:.4g})"
