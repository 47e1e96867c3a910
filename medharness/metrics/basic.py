"""Definitions that belong to no benchmark family: plain exact match."""

from __future__ import annotations

from typing import Optional

from medharness.metrics.base import Metric, Scorable, register_metric


def exact_match(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    answer = prediction.strip().lower()
    return float(any(answer == ref.strip().lower() for ref in item.references))


register_metric(Metric(
    name="exact_match",
    definition="1 if the prediction equals any reference after stripping whitespace and lower-casing, else 0",
    per_sample=exact_match,
))
