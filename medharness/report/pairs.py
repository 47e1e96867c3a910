"""Paired comparisons of two runs of one evaluation, for the reports: which metric, which items
(overall or one group of a breakdown), and how a comparison is written in a table cell."""

from __future__ import annotations

from typing import Optional

from medharness.metrics.grouped import group_values
from medharness.metrics.paired import Paired, compare, metric_of
from medharness.report.document import points
from medharness.report.runs import Run


def paired_runs(a: Run, b: Run, output: str, key: Optional[str] = None, group: Optional[str] = None) -> Paired:
    """B - A for metric `output` on the items both runs have (in `group` of `key` when given)."""
    metric = metric_of(output, a.record.spec.metric_definitions)
    if metric is None:
        return Paired(output, 0, reason=f"{output} is not a registered metric of this run, so no paired test")

    def rows(run: Run) -> list:
        return [s for s in run.samples if key is None or group in group_values(s, key)]

    return compare(rows(a), rows(b), metric, output, a.record.spec.seed)


def delta_text(p: Paired) -> str:
    """'+20.0 [8.0, 33.0] McNemar p=0.008 n=40', plus items left out, or why there is no test."""
    if p.difference is None:
        return f"n/a ({p.reason})" if p.reason else "n/a"
    text = f"{p.difference * 100:+.1f}"
    if p.ci is not None:
        text += f" [{points(p.ci[0])}, {points(p.ci[1])}]"
    if p.p_value is not None:
        text += f" McNemar p={p.p_value:.3g}"
    text += f" n={p.n}"
    if p.only_a or p.only_b:
        text += f" ({p.only_a + p.only_b} items in only one run left out)"
    if p.reason:
        text += f" ({p.reason})"
    return text


def verdict(p: Paired) -> str:
    """'differs', 'not distinguishable' or 'untested' at the 5 % level."""
    separates = p.separates
    return "untested" if separates is None else "differs" if separates else "not distinguishable"
