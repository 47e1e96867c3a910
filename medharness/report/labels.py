"""Human labels for evaluations (columns) and systems (rows).

A label names only what tells two items apart, so one version of one task is just "vqarad",
while two versions side by side become "vqarad v1" and "vqarad v2".
"""

from __future__ import annotations

from typing import Any, Iterable

from medharness.report.runs import Evaluation, Run

RATIO_FIELD = "selection_ratio"
# Dragonfly ablation settings: named whenever set, like the ratio, so an ablation run is never
# labelled as the released model.
ABLATION_FIELDS = ("selection", "levels")


EVALUATION_PARTS = (
    ("task_version", lambda e: f"v{e.task_version}"),
    ("split", lambda e: e.split),
    ("limit", lambda e: f"limit {e.limit}" if e.limit else "all samples"),
    ("headline", lambda e: f"headline {e.headline}"),
    ("definitions", lambda e: f"metric defs #{e.definitions_id()}"),
    ("data_fingerprint", lambda e: f"data #{e.data_fingerprint[:8]}"),
)


def evaluation_labels(evaluations: Iterable[Evaluation]) -> dict[Evaluation, str]:
    """Task name, plus each attribute that still differs among the evaluations sharing the label so far."""
    evaluations = list(evaluations)
    labels = {}
    for ev in evaluations:
        peers = [o for o in evaluations if o.task == ev.task]
        parts = [ev.task]
        for attribute, describe in EVALUATION_PARTS:
            if len({getattr(o, attribute) for o in peers}) > 1:
                parts.append(describe(ev))
                peers = [o for o in peers if getattr(o, attribute) == getattr(ev, attribute)]
        labels[ev] = " ".join(parts)
    return labels


def run_labels(runs: Iterable[Run], with_ratio: bool = True) -> dict[str, str]:
    """run_id -> model name plus the settings that tell it apart from runs of the same model on
    the same evaluation. Task-specific defaults (a card's max_new_tokens) differ between tasks
    but not within one, so one model keeps one label, and one leaderboard row, across tasks."""
    runs = list(runs)
    labels = {}
    for run in runs:
        peers = [o for o in runs if o.evaluation == run.evaluation and o.system.model == run.system.model]
        settings = dict(run.system.generation)
        varying = [
            name for name in settings
            if name != RATIO_FIELD and (len({dict(o.system.generation).get(name) for o in peers}) > 1
                                        or (name in ABLATION_FIELDS and settings[name] is not None))
        ]
        parts = [run.system.model]
        ratios = {o.system.selection_ratio for o in peers}
        if with_ratio and (run.system.selection_ratio is not None or len(ratios) > 1):
            parts.append(f"r={format_setting(run.system.selection_ratio)}")
        parts.extend(f"{name}={format_setting(settings[name])}" for name in varying)
        labels[run.run_id] = " ".join(parts)
    return labels


def format_setting(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
