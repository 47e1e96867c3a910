"""HallusionBench and ProbMed metrics on hand-checked cases (tests/metrics/cases/
hallusionbench_pairs.jsonl, hallusionbench_figures.jsonl, probmed_negations.jsonl)."""

import json
from pathlib import Path

import pytest

from medharness.metrics.grouped import aggregate
from medharness.registry import METRICS
from medharness.schema import SampleResult
from medharness.tasks.probmed import question_type

CASES = Path(__file__).parent / "cases"


def read(name):
    return [json.loads(line) for line in (CASES / name).read_text(encoding="utf-8").splitlines()]


HALLUSION = read("hallusionbench_pairs.jsonl") + read("hallusionbench_figures.jsonl")
PROBMED = read("probmed_negations.jsonl")


def hallusion_items(case):
    return [SampleResult(id=str(i), prediction=item["prediction"], references=[item["gold"]],
                         metadata={k: v for k, v in item.items() if k not in ("prediction", "gold")})
            for i, item in enumerate(case["items"])]


def probmed_items(case):
    return [SampleResult(id=f"{image}_{qa_type}", prediction=prediction, references=[gold],
                         metadata={"image_id": image, "image_type": image_type, "qa_type": qa_type,
                                   "question_type": question_type(qa_type)})
            for image, image_type, qa_type, gold, prediction in case["items"]]


def value(metric_name, items):
    metric = METRICS.get(metric_name)
    if metric.per_sample is not None:
        scores = [metric.per_sample(r.prediction, r) for r in items]
        return sum(scores) / len(scores)
    return metric.corpus(items)[metric_name]


@pytest.mark.parametrize("case", HALLUSION, ids=[c["note"] for c in HALLUSION])
def test_hallusionbench_case(case):
    assert value(case["metric"], hallusion_items(case)) == pytest.approx(case["expected"]), case["note"]


@pytest.mark.parametrize("case", PROBMED, ids=[c["note"] for c in PROBMED])
def test_probmed_case(case):
    items = probmed_items(case)
    scores = METRICS.get("probmed_scores").corpus(items)
    for name, expected in case["outputs"].items():
        got = value(name, items) if name == "probmed_accuracy" else scores[name]
        assert got == (None if expected is None else pytest.approx(expected)), (name, case["note"])


def test_pair_and_figure_bootstrap_resamples_whole_units():
    # 4 pairs (2 questions each): n counts pairs, and every resample keeps pairs whole, so the
    # CI's ends are multiples of 1/4
    case = read("hallusionbench_pairs.jsonl")[2]
    items = []
    for copy in range(2):
        for item in hallusion_items(case):
            item.id = f"{copy}-{item.id}"
            item.metadata["question_pair"] += f"/{copy}"
            items.append(item)
    table = aggregate(items, ["hallusion_qacc"]).overall
    assert table["hallusion_qacc"].n == 4 and table["hallusion_qacc"].value == 0.5
    low, high = table["hallusion_qacc"].ci
    assert (low * 4).is_integer() and (high * 4).is_integer() and low <= 0.5 <= high


def test_probmed_outputs_and_clustering():
    metric = METRICS.get("probmed_scores")
    assert metric.cluster == "image_id"
    assert "probmed_abnormality_no_adv" not in metric.output_names()
    assert metric.output_names()[-2:] == ("probmed_overall", "probmed_overall_no_adv")
    empty = metric.corpus([])
    assert set(empty) == set(metric.output_names()) and all(v is None for v in empty.values())
