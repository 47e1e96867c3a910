"""Dragonfly's selection ablations over results/: the headline metric against the zoom-in
selection ratio, the selection strategy (similarity, random, first, none) and the resolution
levels, per task and modality, with paired tests against the released setting and the best one,
and visual tokens and seconds per sample (seconds from fresh rows only: cached rows keep the
timing of the run that computed them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Optional

import pandas as pd

from medharness.report.analysis import (
    MODALITY, check_tasks, derivation_note, derived_modalities, domain_of, richest_run, task_domain,
)
from medharness.report.document import Document, Figure, Heading, Paragraph, Row, Score, Table
from medharness.report.labels import evaluation_labels, format_setting, run_labels
from medharness.report.pairs import delta_text, paired_runs, verdict
from medharness.report.plots import bar_chart, selection_chart
from medharness.report.runs import Evaluation, Run, RunSet, System, load_runs
from medharness.report.sections import (
    VALUES_NOTE, provenance_blocks, random_weights_warning, sample_warnings, write_outputs,
)

RATIO = ("selection_ratio",)
ABLATION = ("selection", "levels", "selection_ratio")
# The released Dragonfly: similarity selection of 12 of 24 crops over all three levels. A run
# that leaves a setting unset (None) uses the generation's default, which is the released one.
RELEASED = {"selection": "similarity", "levels": "low+medium+high", "selection_ratio": 0.5}
SHORT = {"selection_ratio": "r", "selection": "selection", "levels": "levels"}


@dataclass
class Sweep:
    """Runs of one evaluation and one system that differ only in the `vary` settings."""

    evaluation: Evaluation
    model_label: str
    runs: list[Run]  # sorted by their settings
    vary: tuple[str, ...] = RATIO

    @property
    def ratios(self) -> list[Optional[float]]:
        return [r.system.selection_ratio for r in self.runs]

    def varying(self) -> list[str]:
        """The `vary` settings that take two or more values among the runs."""
        return [k for k in self.vary if len({r.system.setting(k) for r in self.runs}) > 1]

    def labels(self) -> list[str]:
        """One label per run, naming the settings that vary ('r=0.25', 'selection=random r=0.5')."""
        varying = self.varying() or list(self.vary[-1:])
        return [" ".join(f"{SHORT.get(k, k)}={format_setting(r.system.setting(k))}" for k in varying) for r in self.runs]

    def ratio_only(self) -> bool:
        return self.varying() == ["selection_ratio"] and None not in self.ratios


def setting_order(run: Run, vary: tuple[str, ...]) -> tuple:
    values = [run.system.setting(k) for k in vary]
    # levels are nested (low < low+medium < all): their length orders them
    return tuple((v is not None, len(v) if isinstance(v, str) else v or 0.0, str(v)) for v in values)


def find_sweeps(runs: RunSet, tasks: Optional[list[str]], vary: tuple[str, ...] = RATIO) -> list[Sweep]:
    """Groups of two or more current runs of one evaluation and system that set at least one of
    `vary` and differ only there (runs of older versions lack the newer settings: None)."""
    groups: dict[tuple[Evaluation, System], list[Run]] = {}
    for run in runs.current:
        if all(run.system.setting(k) is None for k in vary) or (tasks and run.evaluation.task not in tasks):
            continue
        rest = tuple((k, v) for k, v in run.system.generation if k not in vary)
        groups.setdefault((run.evaluation, System(run.system.model, rest, run.system.random_weights)), []).append(run)
    labels = run_labels([r for members in groups.values() for r in members], with_ratio=False)
    sweeps = [Sweep(ev, labels[members[0].run_id], sorted(members, key=lambda r: setting_order(r, vary)), vary)
              for (ev, _), members in groups.items() if len(members) > 1]
    return sorted(sweeps, key=lambda s: (s.evaluation.task, s.model_label))


def mean_of(run: Run, field: str, modality: Optional[str] = None, fresh_only: bool = False) -> Optional[float]:
    """Mean of a per-sample number over rows without error (and, with fresh_only, not from the
    cache: a cached row keeps the seconds of the run that computed it)."""
    values = [getattr(s, field) for s in rows_of(run, modality, fresh_only) if getattr(s, field) is not None]
    return fmean(values) if values else None


def rows_of(run: Run, modality: Optional[str] = None, fresh_only: bool = False) -> list:
    return [s for s in run.samples if s.error is None and (modality is None or s.metadata.get(MODALITY) == modality)
            and not (fresh_only and s.cached)]


def fresh_count(run: Run, modality: Optional[str] = None) -> tuple[int, int]:
    """(fresh rows, rows) without error: how many rows the seconds are from."""
    return len(rows_of(run, modality, True)), len(rows_of(run, modality))


def is_released(run: Run) -> bool:
    return all(run.system.setting(k) in (None, v) for k, v in RELEASED.items())


def best_of(scores: list[Score], lower_is_better: bool = False) -> list[int]:
    """Positions of the best value (highest, or lowest for a lower-is-better metric)."""
    values = [s.value for s in scores if s.value is not None]
    if not values:
        return []
    top = min(values) if lower_is_better else max(values)
    return [i for i, s in enumerate(scores) if s.value == top]


def analyze_selection(results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None) -> list[Path]:
    """Write selection.html and selection.csv; returns the files written."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    sweeps = find_sweeps(runs, tasks, ABLATION)
    labels = evaluation_labels(runs.evaluations())
    used = [r for s in sweeps for r in s.runs]
    doc = Document("medharness: Dragonfly selection study (ratio, strategy, levels)")
    doc.add(*random_weights_warning(used), Paragraph(VALUES_NOTE, "note"), Paragraph(
        "Settings: r = selection ratio, the share of high-resolution crops kept by zoom-in selection (0.5 is the "
        "released model's 12 of 24); selection = how crops are chosen (similarity to the question, the released "
        "rule; random; first; none); levels = the resolution levels encoded. Each study: runs of one task and model "
        "that differ only in these settings. 'Best' = best headline value; a setting is 'not distinguishable from "
        "the best' when a paired test on the same items does not separate them at the 5 % level (exact McNemar "
        "for 0/1 metrics, else the paired bootstrap CI of the difference containing 0). 'vs released' = the "
        "difference from the released setting (similarity, r=0.5, all levels) with its paired 95 % CI.", "note"))
    records: list[dict] = []
    summary: list[Row] = []
    details = [block for sweep in sweeps for block in sweep_blocks(sweep, labels[sweep.evaluation], records, summary)]
    if sweeps:
        doc.add(Heading("Which setting is best: biomedical versus general images"), Paragraph(answer_text(summary)), Table(
            ["task", "model", "images", "group", "best", "value at best", "not distinguishable from best (paired)"],
            summary, caption="Per task and per modality; 'images' = biomedical or general by the modality vocabulary."))
        doc.add(*details)
    else:
        doc.add(Paragraph(no_sweeps_text(tasks), "warning"))
    notes = sample_warnings(used)
    doc.add(*([notes] if notes else []), *provenance_blocks(runs, used))
    frame = pd.DataFrame.from_records(records, columns=SELECTION_COLUMNS)
    return write_outputs(out_dir, "selection", doc, frame, markdown=False)


SELECTION_COLUMNS = ["column", "task", "model", "setting", "selection", "levels", "selection_ratio", "group", "images",
                     "metric", "value", "ci_low", "ci_high", "n", "small", "delta_vs_released", "delta_ci_low",
                     "delta_ci_high", "p_vs_released", "vs_best", "visual_tokens_per_sample", "seconds_per_sample",
                     "fresh_rows", "rows", "run_id"]


def sweep_blocks(sweep: Sweep, label: str, records: list[dict], summary: list[Row]) -> list:
    headline = sweep.evaluation.headline
    first = richest_run(sweep.runs)
    lower = headline in first.record.spec.options.get("lower_is_better", ())
    derived = {m for m, (d, _) in derived_modalities(first).items() if d}
    modalities = list(dict.fromkeys(m for r in sweep.runs for m in r.record.metrics.groups.get(MODALITY, {})))
    groups: dict[str, Optional[str]] = {"all samples": None}
    groups.update({f"{m} (derived)" if m in derived else m: m for m in modalities})
    settings = sweep.labels()
    released = next((i for i, r in enumerate(sweep.runs) if is_released(r)), None)
    lines: dict[str, list[Score]] = {}
    rows = []
    for group, modality in groups.items():
        scores = [Score.of(r.record.metrics.overall.get(headline) if modality is None
                           else r.record.metrics.groups.get(MODALITY, {}).get(modality, {}).get(headline)) for r in sweep.runs]
        lines[group] = scores
        key = None if modality is None else MODALITY
        best = best_of(scores, lower)
        images = domain_of(modality) if modality else task_domain(first)
        vs_best = [verdict(paired_runs(sweep.runs[best[0]], r, headline, key, modality)) if best and i not in best
                   else ("best" if i in best else "n/a") for i, r in enumerate(sweep.runs)]
        vs_released = [paired_runs(sweep.runs[released], r, headline, key, modality) if released is not None and i != released
                       else None for i, r in enumerate(sweep.runs)]
        summary.append(Row([label, sweep.model_label, images, group, best_text(best, settings),
                            scores[best[0]] if best else Score(None), ties_text(vs_best, settings)]))
        for i, (run, setting, score) in enumerate(zip(sweep.runs, settings, scores)):
            delta = vs_released[i]
            shown = delta_text(delta) if delta else ("released setting" if i == released else "no released run")
            tokens = mean_of(run, "visual_tokens", modality)
            seconds = mean_of(run, "seconds", modality, fresh_only=True)
            fresh, total = fresh_count(run, modality)
            rows.append(Row([group, setting, score, shown, vs_best[i], number(tokens, "{:.0f}"),
                             f"{number(seconds, '{:.3f}')} ({fresh} of {total} fresh)"]))
            records.append(dict(
                column=label, task=sweep.evaluation.task, model=sweep.model_label, setting=setting,
                selection=run.system.setting("selection"), levels=run.system.setting("levels"),
                selection_ratio=run.system.selection_ratio, group=group, images=images, metric=headline,
                value=score.value, ci_low=score.low, ci_high=score.high, n=score.n, small=score.small,
                delta_vs_released=delta.difference if delta else None, delta_ci_low=delta.ci[0] if delta and delta.ci else None,
                delta_ci_high=delta.ci[1] if delta and delta.ci else None, p_vs_released=delta.p_value if delta else None,
                vs_best=vs_best[i], visual_tokens_per_sample=tokens, seconds_per_sample=seconds, fresh_rows=fresh,
                rows=total, run_id=run.run_id))
    blocks: list = [Heading(f"{label}: {sweep.model_label}"), ablation_figure(sweep, label, settings, lines)]
    if derived:
        blocks.append(derivation_note(first))
    if released is None:
        blocks.append(Paragraph("No run at the released setting (similarity, r=0.5, all levels): no 'vs released' test.", "note"))
    blocks.append(Table(["group", "setting", headline, "vs released: difference [paired CI]", "vs best",
                         "visual tokens / sample", "seconds / sample"], rows,
                        caption=f"{headline} per setting and group; seconds are the mean over fresh rows (not from the cache)."))
    return blocks


def ablation_figure(sweep: Sweep, label: str, settings: list[str], lines: dict[str, list[Score]]) -> Figure:
    headline = sweep.evaluation.headline
    if sweep.ratio_only():
        tokens = [mean_of(r, "visual_tokens") for r in sweep.runs]
        seconds = [mean_of(r, "seconds", fresh_only=True) for r in sweep.runs]
        png = selection_chart(f"{label}, {sweep.model_label}: {headline} vs selection ratio",
                              sweep.ratios, lines, headline, tokens, seconds)  # type: ignore[arg-type]
        return Figure(png, f"{headline} against selection ratio, overall and per modality, with visual tokens and seconds per sample",
                      "Top: headline metric per modality with 95 % CIs. Bottom: visual tokens (left axis) and seconds "
                      "(right axis, fresh rows only) per sample.")
    png = bar_chart(f"{label}, {sweep.model_label}: {headline} per setting", settings, lines, f"{headline} x100")
    return Figure(png, f"Bar chart of {headline} per selection setting, overall and per modality, with 95 % CIs",
                  "One group of bars per setting; one bar per modality; whiskers: 95 % bootstrap CI.")


def number(value: Optional[float], pattern: str) -> str:
    return "not recorded" if value is None else pattern.format(value)


def best_text(best: list[int], settings: list[str]) -> str:
    if not best:
        return "n/a"
    return "all equal" if len(best) == len(settings) else ", ".join(settings[i] for i in best)


def ties_text(vs_best: list[str], settings: list[str]) -> str:
    ties = [s for s, v in zip(settings, vs_best) if v == "not distinguishable"]
    untested = [s for s, v in zip(settings, vs_best) if v == "untested"]
    parts = [", ".join(ties) if ties else "none (the paired test separates every other setting)"]
    if untested:
        parts.append(f"untested: {', '.join(untested)} (no paired test for this metric)")
    if all(v == "best" for v in vs_best):
        return "all settings equal"
    return "; ".join(parts) if any(v not in ("best", "n/a") for v in vs_best) else "no other setting"


def answer_text(summary: list[Row]) -> str:
    """One sentence per image domain, from the 'all samples' and per-modality rows."""
    parts = []
    for domain in ("biomedical", "general"):
        hits = [row.cells for row in summary if row.cells[2] == domain]
        if hits:
            listed = "; ".join(f"{c[0]} {c[3]} ({c[1]}): {c[4]}" for c in hits)
            parts.append(f"{domain.capitalize()} images: best setting per task and group: {listed}.")
        else:
            parts.append(f"{domain.capitalize()} images: no study ran on such images.")
    return " ".join(parts) + " Check the 'not distinguishable' column (paired tests) before calling a setting better."


def no_sweeps_text(tasks: Optional[list[str]]) -> str:
    wanted = f" for task(s) {', '.join(tasks)}" if tasks else ""
    return (f"No selection-ratio sweeps or ablations{wanted}: a study needs complete runs of one task and model at "
            "two or more settings, e.g. `medharness run --task vqarad --model dragonfly-med --selection-ratio 0.25,0.5,1`"
            " (or --selection similarity,random, --levels low,low+medium).")
