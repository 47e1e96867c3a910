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
    skipped = {"pathvqa": ["300018", "300019"], "vqarad": ["43", "44"], "slake": ["11018", "11019"]}[task]
    assert_skipped(tmp_path / "run", record, skipped)

    # Another tool's predictions cover every id, the unusable records too: `score` skips the
    # same records (a missing image is noticed although replay never opens images).
    (samples,) = (tmp_path / "run").glob("*/samples.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": r["prediction"] or "yes"}) + "\n" for r in rows))
    cli("score", "--task", task, "--predictions", str(preds), "--data-dir", str(data), "--results", str(tmp_path / "score"))
    scored = only_run(tmp_path / "score")
    assert_skipped(tmp_path / "score", scored, skipped)
    assert scored["metrics"] == record["metrics"]


def assert_skipped(results: Path, record: dict, ids: list[str]) -> None:
    """Exactly the missing image and the `../` path are data errors, and no n counts them."""
    assert record["n_skipped"] == 2 and record["n_errors"] == 0
    assert record["skipped"] == {"missing image": 1, "path outside the data folder": 1}
    (samples,) = results.glob("*/samples.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert sorted(r["id"] for r in rows if r["outcome"] == "data_error") == ids
    valid = len(rows) - 2
    assert record["n_samples"] == valid and record["metrics"]["overall"]["overall"]["n"] == valid
    for groups in record["metrics"]["groups"].values():
        assert sum(cell["overall"]["n"] for cell in groups.values()) >= valid
    assert sum(cell["overall"]["n"] for cell in record["metrics"]["groups"]["answer_type"].values()) == valid
