"""Studies over results/: the headline metric by modality (organ, question type, ...) for every
model, and Dragonfly's selection-ratio sweeps (metric, visual tokens and seconds per sample
against the share of high-resolution crops kept)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Optional

import pandas as pd

from medharness.errors import UserError
from medharness.report.document import Document, Figure, Heading, Link, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, format_setting, run_labels
from medharness.report.links import explorer_href
from medharness.report.plots import bar_chart, selection_chart
from medharness.report.runs import Evaluation, Run, RunSet, System, load_runs
from medharness.report.sections import VALUES_NOTE, provenance_blocks, sample_warnings, write_outputs

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
    doc.add(Paragraph(VALUES_NOTE, "note"))
    records: list[dict] = []
    evaluations = runs.evaluations(tasks)
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


@dataclass
class Sweep:
    """Runs of one evaluation and one system that differ only in the selection ratio."""

    evaluation: Evaluation
    model_label: str
    runs: list[Run]  # sorted by ratio

    @property
    def ratios(self) -> list[float]:
        return [r.system.selection_ratio for r in self.runs]  # type: ignore[misc]


def find_sweeps(runs: RunSet, tasks: Optional[list[str]]) -> list[Sweep]:
    groups: dict[tuple[Evaluation, System], list[Run]] = {}
    for run in runs.current:
        if run.system.selection_ratio is None or (tasks and run.evaluation.task not in tasks):
            continue
        rest = tuple((k, v) for k, v in run.system.generation if k != "selection_ratio")
        base = System(run.system.model, rest, run.system.random_weights)
        groups.setdefault((run.evaluation, base), []).append(run)
    labels = run_labels([r for members in groups.values() for r in members], with_ratio=False)
    sweeps = [Sweep(ev, labels[members[0].run_id], sorted(members, key=lambda r: r.system.selection_ratio))
              for (ev, base), members in groups.items() if len(members) > 1]
    return sorted(sweeps, key=lambda s: (s.evaluation.task, s.model_label))


def mean_of(run: Run, field: str, modality: Optional[str] = None) -> Optional[float]:
    values = [getattr(s, field) for s in run.samples
              if s.error is None and getattr(s, field) is not None
              and (modality is None or s.metadata.get(MODALITY) == modality)]
    return fmean(values) if values else None


def best_ratio(ratios: list[float], scores: list[Score], lower_is_better: bool = False) -> tuple[list[float], list[float]]:
    """The ratio(s) with the best value (highest, or lowest for a lower-is-better metric such
    as an unparseable share), and the other ratios whose CI overlaps theirs."""
    if lower_is_better:
        flipped = [Score(-s.value if s.value is not None else None, n=s.n,
                         low=-s.high if s.high is not None else None,
                         high=-s.low if s.low is not None else None) for s in scores]
        return best_ratio(ratios, flipped)
    scored = [(r, s) for r, s in zip(ratios, scores) if s.value is not None]
    if not scored:
        return [], []
    top = max(s.value for _, s in scored)
    best = [r for r, s in scored if s.value == top]
    floor = max((s.low for r, s in scored if r in best and s.low is not None), default=None)
    ties = [r for r, s in scored if r not in best and s.high is not None and floor is not None and s.high >= floor]
    return best, ties


def ratio_list(ratios: list[float]) -> str:
    return ", ".join(format_setting(r) for r in ratios)


def analyze_selection(results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None) -> list[Path]:
    """Write selection.html and selection.csv; returns the files written."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    sweeps = find_sweeps(runs, tasks)
    labels = evaluation_labels(runs.evaluations())
    doc = Document("medharness: Dragonfly selection-ratio study")
    doc.add(Paragraph(VALUES_NOTE, "note"), Paragraph(
        "Selection ratio r = share of the high-resolution crops kept by zoom-in selection (0.5 is the released "
        "model's 12 of 24). Each sweep: runs of one task and model that differ only in r. 'Best' = highest "
        "headline value; ratios whose CI overlaps the best one's are listed as not distinguishable from it.", "note"))
    records: list[dict] = []
    summary: list[Row] = []
    details = [block for sweep in sweeps for block in sweep_blocks(sweep, labels[sweep.evaluation], records, summary)]
    if sweeps:
        doc.add(Heading("Which ratio is best: biomedical versus general images"), Paragraph(answer_text(summary)), Table(
            ["task", "model", "images", "group", "best r", "value at best r", "not distinguishable from best"],
            summary, caption="Per task and per modality; 'images' = biomedical or general by the modality vocabulary."))
        doc.add(*details)
    else:
        doc.add(Paragraph(no_sweeps_text(tasks), "warning"))
    used = [r for s in sweeps for r in s.runs]
    notes = sample_warnings(used)
    doc.add(*([notes] if notes else []), *provenance_blocks(runs, used))
    frame = pd.DataFrame.from_records(records, columns=SELECTION_COLUMNS)
    return write_outputs(out_dir, "selection", doc, frame, markdown=False)


SELECTION_COLUMNS = ["column", "task", "model", "selection_ratio", "group", "images", "metric", "value", "ci_low",
                     "ci_high", "n", "small", "visual_tokens_per_sample", "seconds_per_sample", "run_id"]


def sweep_blocks(sweep: Sweep, label: str, records: list[dict], summary: list[Row]) -> list:
    headline = sweep.evaluation.headline
    first = richest_run(sweep.runs)
    modalities = list(dict.fromkeys(m for r in sweep.runs for m in r.record.metrics.groups.get(MODALITY, {})))
    derived = {m for m, (d, _) in derived_modalities(first).items() if d}
    lines: dict[str, list[Score]] = {"all samples": [Score.of(r.record.metrics.overall.get(headline)) for r in sweep.runs]}
    modality_of: dict[str, str] = {}
    for m in modalities:
        name = f"{m} (derived)" if m in derived else m
        modality_of[name] = m
        lines[name] = [Score.of(r.record.metrics.groups.get(MODALITY, {}).get(m, {}).get(headline)) for r in sweep.runs]
    tokens = [mean_of(r, "visual_tokens") for r in sweep.runs]
    seconds = [mean_of(r, "seconds") for r in sweep.runs]
    title = f"{label}, {sweep.model_label}: {headline} vs selection ratio"
    png = selection_chart(title, sweep.ratios, lines, headline, tokens, seconds)
    rows = []
    for group, scores in lines.items():
        best, ties = best_ratio(sweep.ratios, scores, headline in first.record.spec.options.get("lower_is_better", ()))
        modality = modality_of.get(group)
        images = domain_of(modality) if modality else task_domain(first)
        if not best:
            shown = "n/a"
        else:
            shown = "all equal" if len(best) == len(sweep.ratios) else ratio_list(best)
        rows.append(Row([group, images, *scores, shown]))
        best_score = scores[sweep.ratios.index(best[0])] if best else Score(None)
        summary.append(Row([label, sweep.model_label, images, group, shown, best_score, ratio_list(ties) or "none"]))
        for ratio, run, score, tok, sec in zip(sweep.ratios, sweep.runs, scores, tokens, seconds):
            records.append(dict(
                column=label, task=sweep.evaluation.task, model=sweep.model_label, selection_ratio=ratio, group=group,
                images=images, metric=headline, value=score.value, ci_low=score.low, ci_high=score.high, n=score.n,
                small=score.small, visual_tokens_per_sample=tok if modality is None else mean_of(run, "visual_tokens", modality),
                seconds_per_sample=sec if modality is None else mean_of(run, "seconds", modality), run_id=run.run_id))
    ratio_headers = [f"r={format_setting(r)}" for r in sweep.ratios]
    cost = Table(["per sample", *ratio_headers], [
        Row(["visual tokens", *[f"{t:.0f}" if t is not None else "not recorded" for t in tokens]]),
        Row(["seconds", *[f"{s:.3f}" if s is not None else "not recorded" for s in seconds]]),
    ], caption="Mean over samples without errors.")
    blocks: list = [Heading(f"{label}: {sweep.model_label}"), Figure(
        png, f"{headline} against selection ratio, overall and per modality, with visual tokens and seconds per sample",
        "Top: headline metric per modality with 95 % CIs. Bottom: visual tokens (left axis) and seconds (right axis) per sample.")]
    if derived:
        blocks.append(derivation_note(first))
    blocks += [Table(["group", "images", *ratio_headers, "best r"], rows, caption=f"{headline} by selection ratio."), cost]
    return blocks


def task_domain(run: Run) -> str:
    """The images' domain when all samples of known modality share one; unknown ones do not count."""
    domains = {domain_of(str(s.metadata.get(MODALITY, "unknown"))) for s in run.samples} - {"unknown"}
    return domains.pop() if len(domains) == 1 else ("mixed" if domains else "unknown")


def answer_text(summary: list[Row]) -> str:
    """One sentence per image domain, from the 'all samples' and per-modality rows."""
    parts = []
    for domain in ("biomedical", "general"):
        hits = [row.cells for row in summary if row.cells[2] == domain]
        if hits:
            listed = "; ".join(f"{c[0]} {c[3]} ({c[1]}): {c[4] if c[4] in ('all equal', 'n/a') else 'r=' + c[4]}" for c in hits)
            parts.append(f"{domain.capitalize()} images: best ratio per task and group: {listed}.")
        else:
            parts.append(f"{domain.capitalize()} images: no sweep ran on such images.")
    return " ".join(parts) + " Check the 'not distinguishable' column before calling a ratio better."


def no_runs_text(tasks: Optional[list[str]]) -> str:
    wanted = f" for task(s) {', '.join(tasks)}" if tasks else ""
    return f"No complete runs{wanted} in the results folder."


def no_sweeps_text(tasks: Optional[list[str]]) -> str:
    wanted = f" for task(s) {', '.join(tasks)}" if tasks else ""
    return (f"No selection-ratio sweeps{wanted}: a sweep needs complete runs of one task and model at two or more "
            "ratios, e.g. `medharness run --task vqarad --model dragonfly-med --selection-ratio 0.25,0.5,0.75,1`.")
