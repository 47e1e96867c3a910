"""Paired bootstrap and exact McNemar on hand-computed cases (tests/metrics/cases/paired_*.jsonl)."""

import json
from pathlib import Path

import numpy as np
import pytest

from medharness.metrics.bootstrap import item_rng, mean_ci
from medharness.metrics.paired import compare, mcnemar_exact, metric_of
from medharness.registry import METRICS
from medharness.schema import SampleResult

CASES = Path(__file__).parent / "cases"


def read(name):
    return [json.loads(line) for line in (CASES / name).read_text(encoding="utf-8").splitlines()]


PER_SAMPLE = read("paired_per_sample.jsonl")
CORPUS = read("paired_corpus.jsonl")


def rows(metric, values, ids=None):
    ids = ids or [f"q{i:03d}" for i in range(len(values))]
    return [SampleResult(id=i, scores={metric: v}) for i, v in zip(ids, values)]


@pytest.mark.parametrize("case", PER_SAMPLE, ids=[c["name"] for c in PER_SAMPLE])
def test_per_sample_cases(case):
    metric = METRICS.get(case["metric"])
    result = compare(rows(case["metric"], case["a"]), rows(case["metric"], case["b"]), metric, case["metric"])
    assert (result.a, result.b) == pytest.approx((case["a_value"], case["b_value"]))
    assert result.difference == pytest.approx(case["difference"])
    assert result.discordant == (tuple(case["discordant"]) if case["discordant"] else None)
    assert result.p_value == (pytest.approx(case["p_value"]) if case["p_value"] is not None else None)
    if case["separates"] is not None:
        assert result.separates is case["separates"]
    low, high = result.ci
    assert low <= result.difference <= high


def test_overlapping_cis_but_the_paired_test_separates():
    case = PER_SAMPLE[0]
    ids = [f"q{i:03d}" for i in range(len(case["a"]))]
    own = [mean_ci(np.asarray(case[k], float), item_rng(0, "closed_accuracy", ids)) for k in ("a", "b")]
    assert own[0][1] >= own[1][0]  # A's upper bound reaches B's lower bound: the CIs overlap
    result = compare(rows("closed_accuracy", case["a"]), rows("closed_accuracy", case["b"]),
                     METRICS.get("closed_accuracy"), "closed_accuracy")
    assert result.separates and result.ci[0] > 0  # McNemar and the paired CI both separate


def test_mcnemar_by_hand():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 1) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 10) == pytest.approx(2 * (1 + 13 + 78 + 286) / 2**13)
    assert mcnemar_exact(10, 3) == mcnemar_exact(3, 10)


def test_items_one_run_lacks_are_left_out_and_counted():
    a = rows("closed_accuracy", [1, 0, 1, 1], ids=["1", "2", "3", "4"])
    b = rows("closed_accuracy", [1, 1, 1, 0, 0], ids=["2", "3", "4", "5", "6"])
    result = compare(a, b, METRICS.get("closed_accuracy"), "closed_accuracy")
    assert (result.n, result.only_a, result.only_b) == (3, 1, 2)
    # common ids 2, 3, 4: A 0 1 1, B 1 1 1
    assert (result.a, result.b, result.discordant) == (pytest.approx(2 / 3), 1.0, (0, 1))


def test_the_interval_depends_on_the_items_not_their_order():
    case = PER_SAMPLE[3]
    metric = METRICS.get("open_token_f1")
    forward = compare(rows("open_token_f1", case["a"]), rows("open_token_f1", case["b"]), metric, "open_token_f1")
    backward = compare(rows("open_token_f1", case["a"])[::-1], rows("open_token_f1", case["b"])[::-1], metric, "open_token_f1")
    assert forward == backward


def corpus_rows(case, answers):
    pairs = case.get("pairs") or [None] * len(answers)
    return [SampleResult(id=f"q{i}", prediction=answer, references=[gold], answer_type="closed",
                         metadata={"question_pair": pair} if pair else {})
            for i, (answer, gold, pair) in enumerate(zip(answers, case["gold"], pairs))]


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_corpus_cases_recompute_the_metric_for_both_systems(case):
    metric = metric_of(case["output"], [case["metric"]])
    assert metric is METRICS.get(case["metric"])
    result = compare(corpus_rows(case, case["a"]), corpus_rows(case, case["b"]), metric, case["output"])
    assert (result.a, result.b, result.n) == (pytest.approx(case["a_value"]), pytest.approx(case["b_value"]), case["n"])
    assert result.difference == pytest.approx(case["difference"])
    assert result.p_value is None and result.ci is not None
    assert result.ci[0] <= result.difference <= result.ci[1]


def test_a_metric_without_resampling_says_why_there_is_no_test():
    metric = METRICS.get("coco_caption")
    assert metric_of("rouge_l", ["rouge_l_sample", "coco_caption"]) is metric
    assert metric_of("rouge_l", ["closed_accuracy"]) is None


def test_data_error_rows_are_left_out_before_intersecting():
    from types import SimpleNamespace

    def row(i, score, outcome="scored"):
        return SimpleNamespace(id=str(i), scores={"closed_accuracy": score}, outcome=outcome)

    a = [row(1, 1.0), row(2, None, "data_error"), row(3, 0.0)]
    b = [row(1, 1.0), row(2, 1.0), row(3, 1.0)]
    result = compare(a, b, METRICS.get("closed_accuracy"), "closed_accuracy")
    assert (result.n, result.only_a, result.only_b, result.discordant) == (2, 0, 1, (0, 1))
