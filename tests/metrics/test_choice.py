"""Answer-letter extraction and multiple-choice accuracy, with cases as data
(tests/metrics/cases/choice_extraction.jsonl; each case says why it is there)."""

import json
from pathlib import Path

import pytest

from medharness.metrics.choice import circular_accuracy, extract_choice
from medharness.registry import METRICS
from medharness.schema import SampleResult

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "choice_extraction.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["note"] for c in CASES])
def test_extraction(case):
    index = extract_choice(case["text"], case["choices"])
    got = None if index is None else "ABCDEFG"[index]
    assert got == case["expected"], case["note"]


def item(prediction, gold, choices=("cat", "dog", "bird", "fish"), **metadata):
    return SampleResult(id="x", prediction=prediction, references=[gold] if gold else [], choices=list(choices) if choices else None, metadata=metadata)


def test_accuracy_and_unparseable_per_sample():
    accuracy, unparseable = METRICS.get("choice_accuracy"), METRICS.get("choice_unparseable")
    right, wrong, unreadable = item("(B)", "B"), item("The answer is C", "B"), item("no idea", "B")
    assert [accuracy.per_sample(i.prediction, i) for i in (right, wrong, unreadable)] == [1.0, 0.0, 0.0]
    assert [unparseable.per_sample(i.prediction, i) for i in (right, wrong, unreadable)] == [0.0, 0.0, 1.0]


def test_unparseable_is_never_guessed():
    # The same unreadable answer scores 0 every time, whatever the options (no random pick).
    scores = {METRICS.get("choice_accuracy").per_sample("hmm", item("hmm", g)) for g in "ABCD"}
    assert scores == {0.0}


def test_not_applicable_without_options_or_gold():
    accuracy = METRICS.get("choice_accuracy")
    assert accuracy.per_sample("B", item("B", "12.5", choices=None)) is None
    assert accuracy.per_sample("B", item("B", None)) is None


def test_circular_accuracy_needs_every_rotation_right():
    items = [
        # question 0: both copies right -> counts
        item("A", "A", circular_index="0"), item("B", "B", circular_index="0"),
        # question 1: one copy wrong -> does not count
        item("A", "A", circular_index="1"), item("A", "C", circular_index="1"),
        # question 2: one copy unparseable -> does not count
        item("C", "C", circular_index="2"), item("???", "D", circular_index="2"),
        # question 3: a single copy, right
        item("D", "D", circular_index="3"),
    ]
    assert circular_accuracy(items) == {"choice_circular_accuracy": 0.5}
    assert circular_accuracy([]) == {"choice_circular_accuracy": None}
