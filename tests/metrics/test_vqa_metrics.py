"""Each VQA metric and normalisation against hand-checked cases kept as data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medharness import text
from medharness.registry import METRICS
from medharness.schema import Sample

CASES = Path(__file__).parent / "cases"
VQA_METRICS = ["closed_accuracy", "closed_accuracy_llavamed", "open_token_f1", "open_recall_llavamed",
               "open_exact_match", "open_accuracy_at_0.75", "overall"]


def read_cases(name: str) -> list[dict]:
    lines = (CASES / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


METRIC_CASES = read_cases("vqa_metrics.jsonl")
NORMALISE_CASES = read_cases("vqa_normalize.jsonl")


@pytest.mark.parametrize("case", METRIC_CASES, ids=lambda c: f"{c['metric']}:{c['prediction']!r}->{c['references']}")
def test_metric_case(case):
    item = Sample(id="x", references=case["references"], answer_type=case["answer_type"])
    value = METRICS.get(case["metric"]).per_sample(case["prediction"], item)
    if case["expected"] is None:
        assert value is None, case["why"]
    else:
        assert value == pytest.approx(case["expected"]), case["why"]


@pytest.mark.parametrize("case", NORMALISE_CASES, ids=lambda c: f"{c['normalisation']}:{c['input']!r}")
def test_normalisation_case(case):
    assert getattr(text, case["normalisation"])(case["input"]) == case["expected"]


def test_every_metric_is_registered_with_a_definition_and_has_cases():
    covered = {c["metric"] for c in METRIC_CASES}
    for name in VQA_METRICS:
        metric = METRICS.get(name)
        assert metric.name == name and metric.per_sample is not None
        assert metric.definition.endswith(".") and len(metric.definition) > 40
        assert name in covered


def test_the_trap_cases_separate_the_two_closed_definitions():
    """'normal' for 'no' is right under LLaVA-Med's rule and wrong under exact match."""
    item = Sample(id="x", references=["no"], answer_type="closed")
    assert METRICS.get("closed_accuracy_llavamed").per_sample("normal", item) == 1.0
    assert METRICS.get("closed_accuracy").per_sample("normal", item) == 0.0
