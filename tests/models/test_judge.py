"""Judged metrics (mmvet_judge, open_judge_match) with an `openai` judge served by the local
test server, whose grading is scripted per answer."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import pytest

from medharness.cards import load_model_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.metrics import judged
from medharness.metrics.judged import (
    MMVET_PROMPT, mmvet_prompts, open_match_prompts, parse_mmvet_score, parse_yes_no,
)
from medharness.models import judge as judge_module
from medharness.registry import METRICS
from medharness.runner import RunConfig, prepare
from medharness.schema import SampleResult
from tests.core.helpers import cli, load_run, model_card, run_dirs
from tests.models.fake_openai_server import FakeOpenAIServer, ServerState, hashed_answer, user_text

FAST = {"backoff_s": 0.001, "backoff_max_s": 0.01, "max_retries": 1, "timeout_s": 5.0}
# The judge's reply to each prediction (a list: successive asks); unlisted: "1.0" if the
# prediction contains the ground truth, else "0.0".
JUDGE_SCRIPT = {
    "rambling": ["I would say", "maybe", "hmm", "well", "not sure"],
    "late": ["Score:", "0.6"],
    "yes-ish": ["Yes, it matches."],
    "no-ish": ["no"],
    "waffle": ["It depends", "perhaps", "unclear"],
}


def prediction_in(prompt: str) -> tuple[str, str]:
    """(ground truth, prediction) from the judge prompt's last table row or labelled lines."""
    if prompt.startswith("Compare the ground truth"):
        row = prompt.removesuffix(judged.MMVET_RETRY_SUFFIX).rsplit("\n", 1)[1]
        _, truth, prediction, _ = row.split(" | ")
        return truth, prediction
    lines = dict(line.split(": ", 1) for line in prompt.splitlines() if ": " in line)
    return lines["Reference answer"], lines["Model answer"]


def grader() -> ServerState:
    asked: dict[str, int] = {}

    def answer(body: dict) -> str:
        prompt = user_text(body)
        if not (prompt.startswith("Compare the ground truth") or prompt.startswith("You grade")):
            return hashed_answer(prompt)  # the model under test
        truth, prediction = prediction_in(prompt)
        if prediction in JUDGE_SCRIPT:
            n = asked[prediction] = asked.get(prediction, -1) + 1
            return JUDGE_SCRIPT[prediction][min(n, len(JUDGE_SCRIPT[prediction]) - 1)]
        right = truth.strip().lower() in prediction.lower()
        if prompt.startswith("You grade"):
            return "yes" if right else "no"
        return "1.0" if right else "0.0"

    return ServerState(answer=answer)


@pytest.fixture
def server():
    judge_module._judges.clear()  # a judge per card name is kept per process
    with FakeOpenAIServer(grader()) as s:
        yield s
    judge_module._judges.clear()


@pytest.fixture
def judge_yaml(server, tmp_path: Path) -> Path:
    return model_card(tmp_path / "judge-llm.yaml", adapter="openai", weights="judge-llm",
                      options={"base_url": server.base_url, **FAST})


def judge_of(card: Path) -> judge_module.Judge:
    return judge_module.get_judge(load_model_card(str(card)))


def item(sid: str, prediction: str, answer: str, answer_type: str = "open",
         error: Optional[str] = None) -> SampleResult:
    return SampleResult(id=sid, prompt=f"question {sid}?", prediction=prediction, references=[answer],
                        answer_type=answer_type, error=error)


@pytest.mark.parametrize(("verdict", "expected"), [
    ("0.5", 0.5), ("1.0", 1.0), ("0", 0.0), (" 0.7\n", 0.7), ("0.0 because it is wrong", 0.0),
    ("1.5", None), ("-0.1", None), ("The score is 0.5", None), ("", None), ("0.5.", None), ("nan", None),
])
def test_parse_mmvet_score(verdict: str, expected: Optional[float]) -> None:
    assert parse_mmvet_score(verdict) == expected


@pytest.mark.parametrize(("verdict", "expected"), [
    ("yes", 1.0), ("Yes.", 1.0), ("**No**", 0.0), (" no, the answer differs", 0.0),
    ("Yesterday", None), ("maybe", None), ("", None),
])
def test_parse_yes_no(verdict: str, expected: Optional[float]) -> None:
    assert parse_yes_no(verdict) == expected


def test_mmvet_prompt_is_mmvets() -> None:
    # sha256 of MM-Vet's prompt as published in mm-vet_evaluator.py (guards against edits).
    assert hashlib.sha256(MMVET_PROMPT.encode()).hexdigest()[:16] == "d1b3e0a5b4e72c88"
    first, retry = mmvet_prompts(item("7", "x = -1", "-1<AND>-5"))
    assert first == MMVET_PROMPT + "\nquestion 7? | -1 <AND> -5 | x = -1 | "
    assert retry == first + "\nPredict the correctness of the answer (digit): "


def test_open_match_prompt_shows_all_references() -> None:
    sample = item("3", "pneumothorax", "pneumothorax")
    sample.references.append("collapsed lung")
    first, retry = open_match_prompts(sample)
    assert "Reference answer: pneumothorax / collapsed lung\nModel answer: pneumothorax\n" in first
    assert retry.startswith(first) and retry.endswith("yes or no:")


@pytest.mark.parametrize("name", ["mmvet_judge", "open_judge_match"])
def test_no_judge_is_one_line(name: str) -> None:
    with pytest.raises(UserError) as err:
        METRICS.get(name).check({})
    assert str(err.value).startswith(f"{name} needs a judge model: pass --judge <model card>")
    assert "\n" not in str(err.value)


def test_unknown_judge_card(tmp_path: Path) -> None:
    config = RunConfig(task="mmvet", model="mock", data_dir=write_fixture("mmvet", tmp_path / "data"),
                       results_dir=tmp_path / "results", judge="no-such-judge")
    with pytest.raises(UserError, match="unknown model 'no-such-judge'"):
        prepare(config)


def test_mmvet_judge_scores_and_records(server, judge_yaml: Path) -> None:
    items = [item("a", "the answer is -5 and -1", "-1<AND>-5"), item("b", "cat", "dog"),
             item("c", "rambling", "dog"), item("d", "late", "dog"),
             item("e", "", "dog", error="image not found: x.png")]
    with pytest.warns(UserWarning, match=r"mmvet_judge: judge verdict unreadable after 5 asks; scored 0.0: 1 sample\(s\): c"):
        rows = METRICS.get("mmvet_judge").batch(items, {}, judge_of(judge_yaml))
    assert [score for score, _ in rows] == [0.0, 0.0, 0.0, 0.6, 0.0]
    a, b, c, d, e = (record for _, record in rows)
    assert a["judge"] == "judge-llm" and len(a["judge_fingerprint"]) == 16
    assert a["prompt"] == mmvet_prompts(items[0])[0] and a["verdict"] == "0.0" and a["parsed"]
    assert (c["parsed"], c["attempts"], c["verdict"]) == (False, 5, "not sure")
    assert c["prompt"].endswith("(digit): ")
    assert (d["parsed"], d["attempts"], d["verdict"]) == (True, 2, "0.6")
    assert e == {"skipped": "the model's answer is an error; scored 0.0"}
    calls = [c["body"] for c in server.state.calls]
    assert len(calls) == 2 + 5 + 2  # a, b once; c five times; d twice; e never
    rambling = [b["temperature"] for b in calls if "| rambling |" in user_text(b)]
    assert rambling == [0.0, 0.0, 0.5, 1.0, 1.5]  # MM-Vet's re-ask schedule
    assert {b["max_tokens"] for b in calls} == {3}


def test_mmvet_judge_full_credit(server, judge_yaml: Path) -> None:
    rows = METRICS.get("mmvet_judge").batch([item("a", "it is a dog", "Dog")], {}, judge_of(judge_yaml))
    assert rows[0][0] == 1.0


def test_failed_judge_request_is_not_scored(server, judge_yaml: Path) -> None:
    first, _ = mmvet_prompts(item("z", "zzz", "dog"))
    server.state.scripts[first] = ["status:400"]
    with pytest.warns(UserWarning, match="judge request failed; not scored: 1 sample"):
        rows = METRICS.get("mmvet_judge").batch([item("z", "zzz", "dog")], {}, judge_of(judge_yaml))
    score, record = rows[0]
    assert score is None and "HTTP 400" in record["error"] and record["verdict"] is None


def test_open_judge_match_only_open(server, judge_yaml: Path) -> None:
    items = [item("o1", "yes-ish", "liver"), item("o2", "no-ish", "liver"), item("o3", "the liver", "Liver"),
             item("c1", "yes", "yes", answer_type="closed"), item("o4", "waffle", "lung")]
    with pytest.warns(UserWarning, match=r"open_judge_match: judge verdict unreadable after 3 asks; scored 0.0: 1 sample\(s\): o4"):
        rows = METRICS.get("open_judge_match").batch(items, {}, judge_of(judge_yaml))
    assert [score for score, _ in rows] == [1.0, 0.0, 1.0, None, 0.0]
    assert rows[3][1] == {}
    assert rows[0][1]["verdict"] == "Yes, it matches."
    assert not any("question c1?" in user_text(c["body"]) for c in server.state.calls)


def run_mmvet(server, judge_yaml: Path, tmp_path: Path, *extra: str):
    data = write_fixture("mmvet", tmp_path / "data")
    model = model_card(tmp_path / "served.yaml", adapter="openai", weights="served-vlm",
                       options={"base_url": server.base_url, **FAST})
    results = tmp_path / "results"
    return results, cli("run", "--task", "mmvet", "--model", str(model), "--data-dir", str(data),
                        "--results", str(results), "--quiet", *extra)


def test_mmvet_run_without_judge_fails_in_one_line(server, judge_yaml: Path, tmp_path: Path) -> None:
    _, proc = run_mmvet(server, judge_yaml, tmp_path)
    assert proc.returncode != 0
    assert "mmvet_judge needs a judge model: pass --judge <model card>" in " ".join(proc.stderr.split())
    assert not server.state.calls  # failed before any model call


def test_mmvet_run_end_to_end(server, judge_yaml: Path, tmp_path: Path) -> None:
    """`medharness run --task mmvet --judge ...` on the MM-Vet fixture: judged scores, with the
    judge's prompt and verdict stored per sample."""
    results, proc = run_mmvet(server, judge_yaml, tmp_path, "--judge", str(judge_yaml))
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(results)
    run, samples = load_run(run_dir)
    answered = [s for s in samples if not s.error]
    assert answered
    options = run["spec"]["options"]
    assert options["judge_card"]["name"] == "judge-llm"
    assert options["judge_fingerprint"] == answered[0].extra["mmvet_judge"]["judge_fingerprint"]
    for s in answered:
        record = s.extra["mmvet_judge"]
        assert record["judge"] == "judge-llm" and record["parsed"]
        assert record["prompt"].startswith("Compare the ground truth")
        assert f" | {s.prediction} | " in record["prompt"]
        assert s.scores["mmvet_judge"] == float(record["verdict"])


def test_mmvet_run_aggregates_judged_scores(server, judge_yaml: Path, tmp_path: Path) -> None:
    results, proc = run_mmvet(server, judge_yaml, tmp_path, "--judge", str(judge_yaml))
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    values = [s.scores["mmvet_judge"] for s in samples if s.scores.get("mmvet_judge") is not None]
    overall = record["metrics"]["overall"]["mmvet_judge"]
    assert overall["n"] == len(values) and overall["value"] == pytest.approx(sum(values) / len(values))
