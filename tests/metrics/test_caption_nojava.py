"""Caption metrics that need no Java, and the behaviour when Java is hidden."""

import json
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest

from medharness.metrics import caption, coco_java
from medharness.metrics.caption import COCO_OUTPUTS, coco_caption, rouge_l_sample, spice_corpus


def item(prediction="", references=()):
    return SimpleNamespace(prediction=prediction, references=list(references))


@pytest.fixture
def no_java(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not coco_java.java_available()


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c"])
def test_every_line_break_becomes_a_space(brk):
    assert coco_java.one_line("a" + brk + "b") == "a b".replace(" ", " " * len(brk))


@pytest.mark.parametrize(
    "prediction, references, expected",
    [
        ("the cat sat on the mat", ["the cat is on the mat"], 5 / 6),  # LCS 5 of 6 and 6
        ("the cat", ["the cat is on the mat"], 2 * (1 * 2 / 6) / (1 + 2 / 6)),  # P 1, R 1/3
        ("", ["normal chest"], 0.0),
        ("normal chest", ["something else", "Normal chest."], 1.0),  # best reference counts
        ("normal chest", [], None),
        ("normal chest", ["", "   "], None),
    ],
)
def test_rouge_l_sample_hand_checked(prediction, references, expected):
    got = rouge_l_sample(prediction, item(references=references))
    assert got == (None if expected is None else pytest.approx(expected))


def test_rouge_l_sample_handles_ten_thousand_words():
    long = " ".join(["lungs"] * 10_000)
    assert rouge_l_sample(long, item(references=["lungs are clear"])) == pytest.approx(2 * (1 / 10_000) * (1 / 3) / (1 / 10_000 + 1 / 3))


def test_without_java_coco_metrics_are_none_with_one_clear_warning(no_java):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = coco_caption([item("heart normal", ["heart is normal"]), item("", ["clear"])])
    assert got == dict.fromkeys(COCO_OUTPUTS)
    assert [str(w.message) for w in caught] == [caption.JAVA_MISSING]
    assert "java" in caption.JAVA_MISSING and "medharness score" in caption.JAVA_MISSING
    assert rouge_l_sample("heart normal", item(references=["heart is normal"])) == pytest.approx(0.8)


def test_spice_without_java_says_so(no_java):
    with pytest.warns(UserWarning, match="SPICE: no Java runtime"):
        assert spice_corpus([item("a", ["a"])]) == {"spice": None}


def test_spice_without_corenlp_names_the_missing_jars(monkeypatch, tmp_path):
    monkeypatch.setattr(coco_java.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(caption, "spice_jars", lambda: [tmp_path / "stanford-corenlp-3.6.0.jar"])
    with pytest.warns(UserWarning, match=r"SPICE: Stanford CoreNLP 3\.6\.0 is missing \(stanford-corenlp-3\.6\.0\.jar"):
        assert spice_corpus([item("a", ["a"])]) == {"spice": None}


def test_a_corpus_without_any_reference_is_all_none():
    with pytest.warns(UserWarning, match="without a reference caption"):
        assert coco_caption([item("x", []), item("y", [" "])]) == dict.fromkeys(COCO_OUTPUTS)


RUN_WITHOUT_JAVA = """
import json, warnings
from medharness.metrics.grouped import aggregate
from medharness.schema import SampleResult
from medharness.registry import METRICS
rows = [SampleResult(id=str(i), prediction=p, references=r, metadata={"modality": m})
        for i, (p, r, m) in enumerate([("heart normal", ["heart is normal"], "xray"),
                                        ("ct shows mass", ["ct shows a mass"], "ct"),
                                        ("", ["clear"], "ct")])]
for row in rows:  # per-sample scores, as the runner stores them
    row.scores["rouge_l_sample"] = METRICS.get("rouge_l_sample").per_sample(row.prediction, row)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    m = aggregate(rows, ["coco_caption", "rouge_l_sample"], ["modality"], 1, 0)
print(json.dumps({"metrics": m.model_dump(), "warnings": sorted({str(w.message) for w in caught})}))
"""


def test_a_run_without_java_still_scores_the_rest(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_JAVA], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["warnings"] == [caption.JAVA_MISSING]
    overall = out["metrics"]["overall"]
    assert overall["cider"]["value"] is None and overall["meteor"]["n"] == 3
    assert overall["rouge_l_sample"]["value"] == pytest.approx((0.8 + 2 * 3 / 7) / 3)
    assert out["metrics"]["groups"]["modality"]["xray"]["rouge_l_sample"]["value"] == pytest.approx(0.8)
