"""The generic breakdown: groups, counts, small-group flags, corpus n, reproducible CIs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from medharness.metrics.bootstrap import item_rng, item_seed, mean_ci
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
    fast = mean_ci(values, item_rng(0, "a", []), n_boot=4000)
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
    ci = corpus_ci(results, units_and_rows, item_rng(0, "u", []), n_boot=50, units=units, relabel=unit_copy("circular_index"))
    assert ci == (1.0, 1.0)
    merged = corpus_ci(results, units_and_rows, item_rng(0, "u", []), n_boot=50, units=units)
    assert merged[0] == 0.0  # without relabelling, a unit drawn twice would merge with itself


# Order independence and item-based seeds, with metrics whose bootstrap depends on which
# positions are drawn (a 0/1 mean does not: its resampled sum is binomial whatever the order).
def token_f1_rows(count: int = 60) -> list[SampleResult]:
    rng = random.Random(3)
    return [SampleResult(id=f"q{i:03d}", prediction="p", references=["r"], answer_type="open",
                         metadata={"modality": "pathology", "organ": rng.choice(["lung", "liver"])},
                         scores={"open_token_f1": round(rng.random(), 3)})
            for i in range(count)]


def corpus_bleu_metric() -> str:
    """BLEU-2 over whitespace tokens (pycocoevalcap's scorer, no Java tokenizer), bootstrapped."""
    from pycocoevalcap.bleu.bleu import Bleu

    from medharness.metrics.base import Metric
    from medharness.registry import METRICS

    name = "test_corpus_bleu"
    if name not in METRICS:
        def bleu(items) -> dict:
            gts = {k: [" ".join(r.lower().split()) for r in it.references] for k, it in enumerate(items)}
            res = {k: [" ".join(it.prediction.lower().split())] for k, it in enumerate(items)}
            return {name: float(Bleu(2).compute_score(gts, res, verbose=0)[0][1]) if items else None}
        METRICS.register(name, Metric(name=name, definition="BLEU-2, whitespace tokens", corpus=bleu))
    return name


def caption_rows() -> list[SampleResult]:
    rng = random.Random(5)
    words = "the a mass lesion left right lung liver small large normal enhancing".split()
    return [SampleResult(id=f"c{i:03d}", prediction=" ".join(rng.choices(words, k=6)),
                         references=[" ".join(rng.choices(words, k=6))], metadata={"modality": "ct"})
            for i in range(30)]


def circular_rows() -> list[SampleResult]:
    rng = random.Random(7)
    return [SampleResult(id=f"m{q:02d}-{copy}", prediction="A" if rng.random() < 0.7 else "B", references=["A"],
                         choices=["x", "y"], metadata={"circular_index": str(q), "modality": "natural"})
            for q in range(90) for copy in range(2)]


@pytest.mark.parametrize("rows, metric", [
    (token_f1_rows, lambda: "open_token_f1"),
    (caption_rows, corpus_bleu_metric),
    (circular_rows, lambda: "choice_circular_accuracy"),
], ids=["token_f1", "corpus_bleu", "clustered"])
def test_intervals_do_not_depend_on_item_order(rows, metric):
    results, name = rows(), metric()
    shuffled = results[:]
    random.Random(11).shuffle(shuffled)
    ordered = aggregate(results, [name], ["modality"], seed=0)
    assert ordered.overall[name].ci is not None
    assert aggregate(shuffled, [name], ["modality"], seed=0) == ordered
    # every item is in one modality group: the same items, the same interval
    (group,) = ordered.groups["modality"].values()
    assert group[name].ci == ordered.overall[name].ci
    assert aggregate(results, [name], seed=1).overall[name].ci != ordered.overall[name].ci


def test_same_items_get_the_same_interval_in_any_report():
    results = token_f1_rows()
    lung = [r for r in results if r.metadata["organ"] == "lung"]
    by_organ = aggregate(results, ["open_token_f1"], ["organ"]).groups["organ"]["lung"]["open_token_f1"]
    alone = aggregate(list(reversed(lung)), ["open_token_f1"]).overall["open_token_f1"]
    assert by_organ.ci == alone.ci and by_organ.value == alone.value


def test_item_seed_depends_on_the_items_not_their_order():
    assert item_seed(0, "m", ["b", "a"]) == item_seed(0, "m", ["a", "b"])
    assert item_seed(0, "m", ["a", "b"]) != item_seed(0, "m", ["a", "c"])
    assert item_seed(0, "m", ["a"]) != item_seed(0, "n", ["a"]) != item_seed(1, "m", ["a"])
