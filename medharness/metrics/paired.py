"""Paired comparison of two systems on the same items: the difference B - A of a metric with a
paired bootstrap CI, and for 0/1 metrics an exact McNemar test.

Paired because both systems answered the same questions: resampling items (the same draw for
both systems) keeps the item difficulty that the two share, so a difference can be clear even
where the two systems' own CIs overlap. Corpus metrics are recomputed on each resample for
both systems; clustered ones resample whole units. Only items both systems have count: rows
recorded as data errors, and items one run lacks, are left out and counted (`only_a`, `only_b`).
The bootstrap seed follows the bootstrap module's rule (the run seed, the metric name and the
sorted item ids), so the same comparison always gives the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Iterable, Optional, Sequence

import numpy as np

from medharness.metrics.base import Metric
from medharness.metrics.bootstrap import ALPHA, corpus_ci, item_rng, mean_ci
from medharness.metrics.grouped import cluster_units, unit_copy
from medharness.registry import METRICS
from medharness.schema import SampleResult


@dataclass(frozen=True)
class Paired:
    """B - A for one metric on the items both systems have."""

    metric: str
    n: int  # items (or units, for a clustered corpus metric) compared
    only_a: int = 0  # usable items only system A has (left out)
    only_b: int = 0
    a: Optional[float] = None  # each system's value on the common items
    b: Optional[float] = None
    difference: Optional[float] = None
    ci: Optional[tuple[float, float]] = None  # paired bootstrap 95 % interval of the difference
    p_value: Optional[float] = None  # exact McNemar, 0/1 metrics only
    discordant: Optional[tuple[int, int]] = None  # (A right and B wrong, A wrong and B right)
    reason: Optional[str] = None  # why there is no test

    @property
    def separates(self) -> Optional[bool]:
        """Whether the two differ at the 5 % level: McNemar for 0/1 metrics, else the paired CI
        excluding 0; None when neither exists."""
        if self.p_value is not None:
            return self.p_value < ALPHA
        if self.ci is not None:
            return not self.ci[0] <= 0.0 <= self.ci[1]
        return None


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p: the binomial(a_only + b_only, 1/2) probability of a split at
    least as uneven as the one seen (doubled smaller tail, at most 1)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n
    return min(1.0, 2 * tail)


def usable(results: Iterable[SampleResult]) -> dict[str, SampleResult]:
    """id -> row, data errors left out (they are in no metric; older rows lack `outcome`)."""
    return {r.id: r for r in results if getattr(r, "outcome", "scored") != "data_error"}


def metric_of(output: str, defined: Iterable[str]) -> Optional[Metric]:
    """The registered metric among a run's `defined` names that produces `output`."""
    for name in defined:
        if name in METRICS:
            metric = METRICS.get(name)
            if output in metric.output_names():
                return metric
    return None


def compare(a: Sequence[SampleResult], b: Sequence[SampleResult], metric: Metric, output: str, seed: int = 0) -> Paired:
    """B - A for `output` (a name `metric` produces) on the items both have."""
    rows_a, rows_b = usable(a), usable(b)
    common = sorted(rows_a.keys() & rows_b.keys())
    only = dict(only_a=len(rows_a.keys() - rows_b.keys()), only_b=len(rows_b.keys() - rows_a.keys()))
    if metric.corpus is None:
        return compare_per_sample([rows_a[i] for i in common], [rows_b[i] for i in common], output, seed, only)
    return compare_corpus([rows_a[i] for i in common], [rows_b[i] for i in common], metric, output, seed, only)


def compare_per_sample(a: list[SampleResult], b: list[SampleResult], output: str, seed: int, only: dict) -> Paired:
    pairs = [(x.scores.get(output), y.scores.get(output)) for x, y in zip(a, b)]
    ids = [x.id for x, (u, v) in zip(a, pairs) if u is not None and v is not None]
    values = np.asarray([(u, v) for u, v in pairs if u is not None and v is not None], dtype=float).reshape(-1, 2)
    n = len(values)
    if n == 0:
        return Paired(output, 0, **only, reason="no item has a score from both systems")
    diffs = values[:, 1] - values[:, 0]
    ci = mean_ci(diffs, item_rng(seed, output, ids)) if n > 1 else None
    p_value = discordant = None
    if np.isin(values, (0.0, 1.0)).all():
        discordant = (int(((values[:, 0] == 1) & (values[:, 1] == 0)).sum()), int(((values[:, 0] == 0) & (values[:, 1] == 1)).sum()))
        p_value = mcnemar_exact(*discordant)
    return Paired(output, n, **only, a=float(values[:, 0].mean()), b=float(values[:, 1].mean()),
                  difference=float(diffs.mean()), ci=ci, p_value=p_value, discordant=discordant)


def compare_corpus(a: list[SampleResult], b: list[SampleResult], metric: Metric, output: str, seed: int, only: dict) -> Paired:
    assert metric.corpus is not None
    corpus = metric.corpus
    value_a = corpus(a).get(output) if a else None
    value_b = corpus(b).get(output) if b else None
    units = cluster_units(a, metric.cluster) if metric.cluster else None
    n = len(units) if units is not None else len(a)
    if value_a is None or value_b is None:
        return Paired(output, n, **only, a=value_a, b=value_b, reason="the metric has no value for one system")
    if not metric.bootstrap:
        return Paired(output, n, **only, a=value_a, b=value_b, difference=value_b - value_a,
                      reason=f"{output} is too slow to resample (no CI), so no paired test")
    relabel = unit_copy(metric.cluster) if metric.cluster else None

    def difference(pairs: Sequence[tuple]) -> Optional[float]:
        x = corpus([p[0] for p in pairs]).get(output)
        y = corpus([p[1] for p in pairs]).get(output)
        return None if x is None or y is None else y - x

    def relabel_pair(pair: tuple, k: int) -> tuple:
        assert relabel is not None
        return relabel(pair[0], k), relabel(pair[1], k)

    ci = corpus_ci(list(zip(a, b)), difference, item_rng(seed, output, (r.id for r in a)),
                   units=units, relabel=relabel_pair if relabel else None) if n > 1 else None
    return Paired(output, n, **only, a=value_a, b=value_b, difference=value_b - value_a, ci=ci)
