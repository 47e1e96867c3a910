"""COCO caption metrics with Java: hand-checked values, equality with a direct pycocoevalcap
call, and the traps (line breaks, empty references, huge and non-ASCII predictions)."""

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from medharness.metrics import caption, coco_java
from medharness.metrics.caption import COCO_OUTPUTS, coco_caption, coco_scores
from medharness.registry import METRICS

pytestmark = [
    pytest.mark.java,
    pytest.mark.skipif(not coco_java.java_available(), reason="needs a Java runtime"),
]

CASES = json.loads((Path(__file__).parent / "data" / "caption_cases.json").read_text())

HYPOTHESES = [
    "The heart is normal in size.",
    "No acute disease, lungs clear.",
    "Large pleural effusion on the left!",
    "",
    "café naïve lesion 中文",
    "Stable cardiomegaly. No focal consolidation.",
]
REFERENCES = [
    ["The heart size is normal. The lungs are clear."],
    ["Lungs are clear; no acute cardiopulmonary disease.", "No acute disease."],
    ["Left pleural effusion."],
    ["Normal chest."],
    ["A naïve lesion in the café, 中文."],
    ["Cardiomegaly is stable; there is no consolidation."],
]


@pytest.fixture(scope="session")
def meteor_server():
    """One start of our METEOR server (about 10 s) for the whole test session."""
    coco_java.meteor_corpus([["warm up"]], ["warm up"])
    yield


def direct_pycocoevalcap():
    """A direct pycocoevalcap evaluation, with its own METEOR (started once per call of this)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    meteor = Meteor()

    def evaluate(hypotheses, references):
        tokenizer = PTBTokenizer()
        gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
        res = tokenizer.tokenize({i: [{"caption": h}] for i, h in enumerate(hypotheses)})
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        out = {f"bleu_{n}": b for n, b in enumerate(bleu, 1)}
        out["meteor"] = meteor.compute_score(gts, res)[0]
        out["rouge_l"] = Rouge().compute_score(gts, res)[0]
        out["cider"] = Cider().compute_score(gts, res)[0]
        return out

    return evaluate


@pytest.fixture(scope="session")
def direct():
    return direct_pycocoevalcap()


def items(hypotheses, references):
    return [SimpleNamespace(prediction=h, references=r) for h, r in zip(hypotheses, references)]


def test_corpus_numbers_equal_a_direct_pycocoevalcap_call(meteor_server, direct):
    ours = coco_caption(items(HYPOTHESES, REFERENCES))
    expected = direct(HYPOTHESES, REFERENCES)
    assert set(ours) == set(COCO_OUTPUTS)
    for name in COCO_OUTPUTS:
        assert ours[name] == pytest.approx(expected[name], abs=1e-12), name
    assert 0 < ours["meteor"] < 1 and ours["cider"] > 0


def test_group_corpora_are_their_own_corpora(meteor_server, direct):
    """A group's CIDEr uses the group's IDF, as a direct call on that corpus would."""
    sub_h, sub_r = HYPOTHESES[:3], REFERENCES[:3]
    ours = coco_caption(items(sub_h, sub_r))
    assert ours == pytest.approx(direct(sub_h, sub_r), abs=1e-12)
    assert ours["cider"] != pytest.approx(coco_caption(items(HYPOTHESES, REFERENCES))["cider"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hand_checked_values(case, meteor_server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = coco_scores(case["predictions"], case["references"])
    for name, value in case["expected"].items():
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(value, abs=1e-6), name
    for name, bound in case.get("below", {}).items():
        assert 0 <= got[name] < bound, name


@pytest.mark.parametrize("brk", ["\r", "\u2028", "\u2029", "\x0b", "\x0c", "\r\n"])
def test_a_line_break_in_one_prediction_does_not_shift_the_others(brk, meteor_server):
    broken = ["Heart normal." + brk + "Lungs clear."] + HYPOTHESES[1:]
    spaced = ["Heart normal. Lungs clear."] + HYPOTHESES[1:]
    assert coco_caption(items(broken, REFERENCES)) == coco_caption(items(spaced, REFERENCES))


def test_the_line_break_trap_is_real_in_pycocoevalcap(meteor_server, direct):
    """Shows why the normalisation exists: the raw call misaligns every later prediction."""
    broken = ["Heart normal.\rLungs clear."] + HYPOTHESES[1:]
    raw = direct(broken, REFERENCES)
    ours = coco_caption(items(broken, REFERENCES))
    assert raw["rouge_l"] != pytest.approx(ours["rouge_l"])


def test_empty_reference_corpus_reports_cider_none_with_one_warning(meteor_server):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = coco_caption(items(["some text"], [["..."]]))
    assert got["cider"] is None and got["bleu_1"] is not None
    assert [str(w.message) for w in caught] == [caption.EMPTY_REFERENCES]


def test_items_without_references_are_left_out_with_a_warning(meteor_server):
    with_missing = items(HYPOTHESES + ["orphan prediction"], REFERENCES + [[]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = coco_caption(with_missing)
    assert got == coco_caption(items(HYPOTHESES, REFERENCES))
    assert caption.NO_REFERENCE in [str(w.message) for w in caught]


def test_ten_thousand_word_prediction_is_scored(meteor_server):
    """Uncut, this prediction makes METEOR 1.5 run out of memory after about a minute."""
    long = " ".join(["the heart is normal and the lungs are clear"] * 1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = coco_caption(items([long] + HYPOTHESES[1:], REFERENCES))
    assert [str(w.message) for w in caught] == [caption.METEOR_CUT]
    assert all(got[name] is not None for name in COCO_OUTPUTS)
    assert 0 <= got["bleu_1"] < coco_caption(items(HYPOTHESES, REFERENCES))["bleu_1"]
    assert METRICS.get("rouge_l_sample").per_sample(long, SimpleNamespace(references=REFERENCES[0])) < 0.01


def test_groups_reuse_the_tokenisation_of_the_whole_run(monkeypatch, meteor_server):
    coco_caption(items(HYPOTHESES, REFERENCES))

    def no_java(lines):
        raise AssertionError(f"tokenizer started again for {lines}")

    monkeypatch.setattr(coco_java, "_run_tokenizer", no_java)
    assert coco_caption(items(HYPOTHESES[2:], REFERENCES[2:]))["bleu_1"] > 0


def test_ptb_tokenizer_matches_pycocoevalcap_on_awkward_text():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = ["Ümlaut ||| x|y “quoted” 1.5cm", "", "(a) -LRB- test...", "\ttabs\x85and nel"]
    direct = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    assert coco_java.ptb_tokenize(texts) == [direct[i][0] for i in range(len(texts))]


def test_tokenizer_that_loses_lines_is_an_error(monkeypatch):
    class Done:
        returncode, stdout, stderr = 0, b"only one line\n", b""

    monkeypatch.setattr(coco_java.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(coco_java.JavaScorerError, match="2 lines for 3 captions"):
        coco_java._run_tokenizer(["first", "second", "third"])


def test_meteor_server_is_replaced_after_a_failure(monkeypatch):
    started = []

    class FakeServer:
        def __init__(self):
            started.append(self)
            self.broken = len(started) == 1

        def alive(self):
            return True

        def corpus_score(self, references, hypotheses):
            if self.broken:
                raise coco_java.JavaScorerError("METEOR stopped: java.lang.OutOfMemoryError")
            return 0.5

        def close(self):
            pass

    monkeypatch.setattr(coco_java, "_meteor", None)
    monkeypatch.setattr(coco_java, "MeteorProcess", FakeServer)
    with pytest.raises(coco_java.JavaScorerError):
        coco_java.meteor_corpus([["a"]], ["a"])
    assert coco_java.meteor_corpus([["a"]], ["a"]) == 0.5
    assert len(started) == 2
