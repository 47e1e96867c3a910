"""Seeded percentile-bootstrap confidence intervals. The seed of an interval is derived from
the items it covers, so the same items get the same interval wherever they appear."""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Optional, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

N_BOOT = 1000
N_BOOT_CORPUS = 200  # corpus metrics recompute over the whole group per draw
ALPHA = 0.05
_CHUNK = 4_000_000  # resampled indices held in memory at once


def item_seed(seed: int, metric: str, ids: Iterable[str]) -> list[int]:
    """The bootstrap seed for `metric` over the items `ids` (in any order), with the run's
    `seed`: the overall table, a group holding the same items and another report (or a paired
    comparison) all draw the same resamples, and no interval depends on which were drawn before."""
    blob = "\x1f".join([metric, *sorted(ids)]).encode()
    words = np.frombuffer(hashlib.sha256(blob).digest()[:16], dtype="<u4")
    return [seed, *(int(w) for w in words)]


def item_rng(seed: int, metric: str, ids: Iterable[str]) -> np.random.Generator:
    return np.random.default_rng(item_seed(seed, metric, ids))


def mean_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> Optional[tuple[float, float]]:
    """95 % percentile interval of the mean of `values` under resampling with replacement."""
    n = len(values)
    if n == 0:
        return None
    if np.isin(values, (0.0, 1.0)).all():
        # For 0/1 values the resampled sum is exactly Binomial(n, mean): same distribution,
        # without materialising n_boot x n indices.
        means = rng.binomial(n, values.mean(), size=n_boot) / n
    else:
        rows = max(1, _CHUNK // n)
        parts = []
        for start in range(0, n_boot, rows):
            idx = rng.integers(0, n, size=(min(rows, n_boot - start), n))
            parts.append(values[idx].mean(axis=1))
        means = np.concatenate(parts)
    lo, hi = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return float(lo), float(hi)


def corpus_ci(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], Optional[float]],
    rng: np.random.Generator,
    n_boot: int = N_BOOT_CORPUS,
    units: Optional[Sequence[Sequence[int]]] = None,
    relabel: Optional[Callable[[T, int], T]] = None,
) -> Optional[tuple[float, float]]:
    """Percentile interval of a corpus-level statistic (recomputed on each resample). With
    `units` (lists of item positions), whole units are resampled instead of single items, and
    `relabel(item, k)` marks the k-th drawn unit's items so that a unit drawn twice counts twice."""
    groups = units if units is not None else [[i] for i in range(len(items))]
    n = len(groups)
    if n == 0:
        return None
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        if relabel is None:
            sample = [items[i] for g in idx for i in groups[g]]
        else:
            sample = [relabel(items[i], k) for k, g in enumerate(idx) for i in groups[g]]
        value = statistic(sample)
        if value is not None:
            draws.append(value)
    if not draws:
        return None
    lo, hi = np.quantile(np.asarray(draws), [ALPHA / 2, 1 - ALPHA / 2])
    return float(lo), float(hi)
