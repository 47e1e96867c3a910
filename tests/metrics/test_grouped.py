"""The generic breakdown: groups, counts, small-group flags, corpus n, reproducible CIs."""

from __future__ import annotations

import random

import numpy as np

from medharness.metrics.bootstrap import cell_rng, mean_ci
from medharness.metrics.grouped import MISSING, aggregate, group_values
from medharness.schema import SampleResult


def item(i: int, score: float, **metadata) -> SampleResult:
    return SampleResult(id=f"s{i:03d}", prediction="yes" if score else "no", references=["yes"],
                        answer_type="closed", metadata=metadata, scores={"exact_match": score})


def test_list_values_count_in_each_group_and_missing_is_its_own_group():
    r = item(0, 1.0, question_type=["PRES", "POS"])
    assert group_values(r, "question_type") == ["POS", "PRES"]
    assert group_values(r, "organ") == [MISSING]
    assert group_values(r, "answer_type") == ["closed"]  # a SampleResult field, not metadata
    assert group_values(item(1, 0.0, paraphrase=True), "paraphrase") == ["true"]


def test_counts_values_and_small_flags_by_hand():
    results = [item(0, 1.0, modality="ct"), item(1, 0.0, modality="ct"), item(2, 1.0, modality="ct"),
               item(3, 1.0, modality="mri")]
    metrics = aggregate(results, ["exact_match"], ["modality"], min_group_size=3)
    overall = metrics.overall["exact_match"]
    assert (overall.value, overall.n, overall.small) == (0.75, 4, False)
    ct, mri = metrics.groups["modality"]["ct"]["exact_match"], metrics.groups["modality"]["mri"]["exact_match"]
    assert (ct.value, ct.n, ct.small) == (2 / 3, 3, False)
    assert (mri.value, mri.n, mri.small, mri.ci) == (1.0, 1, True, None)


def test_numbers_do_not_depend_on_item_order():
    rng = random.Random(0)
    results = [item(i, float(rng.random() < 0.6), modality=rng.choice(["ct", "mri"])) for i in range(200)]
    shuffled = results[:]
    rng.shuffle(shuffled)
    assert aggregate(results, ["exact_match"], ["modality"]) == aggregate(shuffled, ["exact_match"], ["modality"])
    assert aggregate(results, ["exact_match"], seed=1) != aggregate(results, ["exact_match"], seed=2)


def test_binary_bootstrap_shortcut_matches_resampling():
    values = np.array([1.0] * 70 + [0.0] * 30)
    fast = mean_ci(values, cell_rng(0, "a"), n_boot=4000)
    idx = np.random.default_rng(1).integers(0, 100, size=(4000, 100))
    slow = np.quantile(values[idx].mean(axis=1), [0.025, 0.975])
    assert abs(fast[0] - slow[0]) <= 0.02 and abs(fast[1] - slow[1]) <= 0.02
    assert fast[0] < 0.7 < fast[1]


def test_corpus_n_counts_items_with_a_reference():
    from medharness.metrics.base import Metric
    from medharness.registry import METRICS

    name = "test_count_corpus"
    if name not in METRICS:
        METRICS.register(name, Metric(name=name, definition="items seen", bootstrap=False,
                                      corpus=lambda items: {name: float(len(items))}))
    results = [item(0, 1.0), item(1, 1.0), item(2, 1.0).model_copy(update={"references": [" "]})]
    value = aggregate(results, [name]).overall[name]
    assert (value.value, value.n) == (3.0, 2)


def test_clustered_metric_counts_and_resamples_whole_units():
    """MMBench circular accuracy: 3 questions x 2 rotated copies; n counts questions and a
    question drawn twice by the bootstrap counts twice."""
    def row(i: int, question: int, right: bool) -> SampleResult:
        return SampleResult(id=f"r{i}", prediction="A" if right else "B", references=["A"],
                            choices=["x", "y"], metadata={"circular_index": str(question)})

    results = [row(0, 1, True), row(1, 1, True), row(2, 2, True), row(3, 2, False), row(4, 3, True), row(5, 3, True)]
    value = aggregate(results, ["choice_circular_accuracy"]).overall["choice_circular_accuracy"]
    assert value.n == 3 and value.value == 2 / 3
    assert value.ci is not None

    from medharness.metrics.bootstrap import corpus_ci
    from medharness.metrics.grouped import unit_copy

    def units_and_rows(items) -> float:  # every draw must hold 3 units of 2 rows each
        labels = [i.metadata["circular_index"] for i in items]
        return float(len(set(labels)) == 3 and len(labels) == 6)

    units = [[0, 1], [2, 3], [4, 5]]
    ci = corpus_ci(results, units_and_rows, cell_rng(0, "u"), n_boot=50, units=units, relabel=unit_copy("circular_index"))
    assert ci == (1.0, 1.0)
    merged = corpus_ci(results, units_and_rows, cell_rng(0, "u"), n_boot=50, units=units)
    assert merged[0] == 0.0  # without relabelling, a unit drawn twice would merge with itself
