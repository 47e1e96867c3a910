"""POPE, TextVQA, ChartQA, GQA and MMMU metrics: per-sample cases as data
(tests/metrics/cases/general_metrics.jsonl) and hand-computed corpus values."""

import json
from pathlib import Path

import pytest

from medharness.metrics.general import pope_counts, vqa_normalise
from medharness.registry import METRICS
from medharness.schema import SampleResult

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "general_metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['metric']}: {c['note']}" for c in CASES])
def test_per_sample(case):
    result = SampleResult(id="x", prediction=case["prediction"], references=case["references"])
    score = METRICS.get(case["metric"]).per_sample(case["prediction"], result)
    assert score == pytest.approx(case["expected"]), case["note"]


def pope_items(pairs):
    return [SampleResult(id=str(i), prediction=p, references=[g]) for i, (p, g) in enumerate(pairs)]


def test_pope_corpus_hand_computed():
    # gold yes x4: yes, Yes., no, "unsure" -> TP 2, FN 2 (unparseable gold-yes is a miss)
    # gold no x4:  yes, no, No., no        -> FP 1
    items = pope_items([
        ("yes", "yes"), ("Yes.", "yes"), ("no", "yes"), ("unsure", "yes"),
        ("yes", "no"), ("no", "no"), ("No.", "no"), ("no", "no"),
    ])
    out = pope_counts(items)
    assert out["pope_precision"] == pytest.approx(2 / 3)
    assert out["pope_recall"] == pytest.approx(2 / 4)
    assert out["pope_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # share of items PREDICTED yes (3 of 8); lmms-eval's yes_ratio would be the gold share, 0.5
    assert out["pope_yes_ratio"] == pytest.approx(3 / 8)


def test_pope_corpus_without_positive_predictions():
    out = pope_counts(pope_items([("no", "no"), ("no", "yes")]))
    assert out["pope_precision"] is None and out["pope_f1"] is None
    assert out["pope_recall"] == 0.0 and out["pope_yes_ratio"] == 0.0
    assert pope_counts([]) == {"pope_precision": None, "pope_recall": None, "pope_f1": None, "pope_yes_ratio": None}


def test_pope_metric_registered_with_its_outputs():
    metric = METRICS.get("pope_prf")
    assert metric.output_names() == ("pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio")
    assert "share of GOLD yes" in metric.definition


@pytest.mark.parametrize("raw, expected", [
    ("The Dog.", "dog"), ("Ten", "10"), ("isnt", "isn't"), ("a / b", "b"), ("1,5", "15"), ("yes!", "yes"),
])
def test_vqa_normalise(raw, expected):
    assert vqa_normalise(raw) == expected


def test_not_applicable_without_references():
    empty = SampleResult(id="x", prediction="yes", references=[])
    for name in ("pope_accuracy", "vqa_accuracy", "relaxed_accuracy", "relaxed_accuracy_lenient", "gqa_exact_match",
                 "gqa_exact_match_lenient", "mmmu_accuracy"):
        assert METRICS.get(name).per_sample("yes", empty) is None, name
