"""`medharness run --model majority` on each medical VQA fixture, then `medharness score` on its
predictions: every metric overall and per group with counts and CIs, and identical numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medharness.cli import main
from tests.tasks.test_medvqa_common import fixture_dir

METRICS = ["closed_accuracy", "closed_accuracy_llavamed", "open_token_f1", "open_recall_llavamed",
           "open_exact_match", "open_accuracy_at_0.75", "overall"]
GROUPS = {"pathvqa": ["answer_type", "modality", "question_type"],
          "vqarad": ["answer_type", "modality", "organ", "paraphrase", "question_type"],
          "slake": ["answer_type", "content_type", "modality", "organ"]}


def cli(*args: str) -> None:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    assert done.value.code == 0


def only_run(results: Path) -> dict:
    (run_json,) = results.glob("*/run.json")
    return json.loads(run_json.read_text())


@pytest.mark.parametrize("task", ["pathvqa", "vqarad", "slake"])
def test_run_then_score_gives_the_same_numbers(task, tmp_path_factory, tmp_path):
    data = fixture_dir(tmp_path_factory, task)
    cli("run", "--task", task, "--model", "majority", "--data-dir", str(data), "--results", str(tmp_path / "run"), "--quiet")
    record = only_run(tmp_path / "run")
    overall = record["metrics"]["overall"]
    assert list(overall) == METRICS
    closed, open_ = overall["closed_accuracy"], overall["open_token_f1"]
    assert closed["n"] > 0 and open_["n"] > 0 and overall["overall"]["n"] == closed["n"] + open_["n"]
    assert all(v["ci"] is not None and v["ci"][0] <= v["value"] <= v["ci"][1] for v in overall.values())
    assert sorted(record["metrics"]["groups"]) == GROUPS[task]
    by_type = record["metrics"]["groups"]["answer_type"]
    assert by_type["closed"]["closed_accuracy"]["n"] == closed["n"] and by_type["open"]["closed_accuracy"]["n"] == 0
    assert record["n_errors"] >= 1  # the fixture's image path escaping the folder

    (samples,) = (tmp_path / "run").glob("*/samples.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": r["prediction"]}) + "\n" for r in rows if not r["error"]))
    cli("score", "--task", task, "--predictions", str(preds), "--data-dir", str(data), "--results", str(tmp_path / "score"))
    scored = only_run(tmp_path / "score")
    assert scored["metrics"] == record["metrics"]
