"""The one generic breakdown: every metric, overall and by any metadata key, with counts and
bootstrap CIs. There are no per-modality functions; a modality table is `group_by: [modality]`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable, Sequence

import numpy as np

from medharness.metrics.base import Metric
from medharness.metrics.bootstrap import corpus_ci, item_rng, mean_ci
from medharness.registry import METRICS
from medharness.schema import Metrics, MetricTable, MetricValue, SampleResult

MISSING = "(missing)"


def group_values(result: SampleResult, key: str) -> list[str]:
    """The groups an item belongs to for `key`: metadata first, then a SampleResult field.
    A list value puts the item in each listed group (comma-joined question types)."""
    value: Any = result.metadata.get(key, getattr(result, key, None))
    if value is None or value == "" or value == []:
        return [MISSING]
    if isinstance(value, (list, tuple)):
        return sorted({label(v) for v in value})
    return [label(value)]


def label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def metric_table(results: Sequence[SampleResult], metrics: Sequence[Metric], seed: int, min_size: int) -> MetricTable:
    """`results` in id order: resampling draws positions, so the order fixes the interval."""
    table: MetricTable = {}
    for metric in metrics:
        if metric.per_sample is not None or metric.batch is not None:
            scored = [r for r in results if r.scores.get(metric.name) is not None]
            values = np.asarray([r.scores[metric.name] for r in scored], dtype=float)
            n = len(values)
            value = float(values.mean()) if n else None
            ci = mean_ci(values, item_rng(seed, metric.name, (r.id for r in scored))) if n > 1 else None
            table[metric.name] = MetricValue(value=value, n=n, ci=ci, small=n < min_size)
        if metric.corpus is not None:
            table.update(corpus_table(results, metric, seed, min_size))
    return table


def corpus_table(results: Sequence[SampleResult], metric: Metric, seed: int, min_size: int) -> MetricTable:
    assert metric.corpus is not None
    # A corpus metric can only use items that have a reference: n counts those (or the units
    # they form, for a clustered metric).
    referenced = [r for r in results if any(ref.strip() for ref in r.references)]
    units, relabel = None, None
    if metric.cluster:
        relabel = unit_copy(metric.cluster)
        units = cluster_units(results, metric.cluster)
        n = len({label(r.metadata.get(metric.cluster, f"row {r.id}")) for r in referenced})
    else:
        n = len(referenced)
    values = metric.corpus(results) if results else {name: None for name in metric.output_names()}
    table: MetricTable = {}
    for name in metric.output_names():
        ci = None
        if metric.bootstrap and n > 1 and values.get(name) is not None:
            ci = corpus_ci(results, lambda sub, name=name: metric.corpus(sub).get(name),
                           item_rng(seed, name, (r.id for r in results)), units=units, relabel=relabel)
        table[name] = MetricValue(value=values.get(name), n=n, ci=ci, small=n < min_size)
    return table


def cluster_units(results: Sequence[SampleResult], key: str) -> list[list[int]]:
    """Positions of the items of each unit (items sharing the `key` label), in first-seen order."""
    members: dict[str, list[int]] = {}
    for position, r in enumerate(results):
        members.setdefault(label(r.metadata.get(key, f"row {r.id}")), []).append(position)
    return list(members.values())


def unit_copy(key: str):  # type: ignore[no-untyped-def]
    """For a clustered bootstrap: the item as seen in the k-th drawn unit (its cluster label
    made unique, so a unit drawn twice is two units to the metric)."""

    def copy(r: SampleResult, k: int) -> SimpleNamespace:
        metadata = {**r.metadata, key: f"{label(r.metadata.get(key, r.id))}#{k}"}
        return SimpleNamespace(id=r.id, prediction=r.prediction, references=r.references,
                               answer_type=r.answer_type, choices=r.choices, metadata=metadata)

    return copy


def aggregate(
    results: Iterable[SampleResult],
    metric_names: Sequence[str],
    group_by: Sequence[str] = (),
    min_group_size: int = 30,
    seed: int = 0,
) -> Metrics:
    """Score tables for a run. Items are put in id order first, so the numbers (CIs included)
    do not depend on batch size, sample order or the number of processes. Data errors are in
    no table and no n; `counts` says how many there were."""
    everything = list(results)
    ordered = sorted((r for r in everything if r.outcome != "data_error"), key=lambda r: r.id)
    metrics = [METRICS.get(name) for name in metric_names]
    out = Metrics(
        overall=metric_table(ordered, metrics, seed, min_size=0),
        counts={
            "samples": len(ordered),
            "errors": sum(1 for r in ordered if r.error),
            "cached": sum(1 for r in ordered if r.cached),
            "skipped": len(everything) - len(ordered),
        },
    )
    for key in group_by:
        members: dict[str, list[SampleResult]] = {}
        for r in ordered:
            for g in group_values(r, key):
                members.setdefault(g, []).append(r)
        out.groups[key] = {
            g: metric_table(items, metrics, seed, min_group_size)
            for g, items in sorted(members.items())
        }
    return out

