"""`medharness score`: another tool's predictions, scored with our definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.helpers import cli, jsonl_fixture, load_run, run_dirs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def test_score_equals_the_run_that_produced_the_predictions(data, tmp_path):
    results = tmp_path / "results"
    assert cli("run", "--task", "custom-jsonl", "--model", "majority", "--data-dir", str(data), "--results", str(results), "--quiet").returncode == 0
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": s.id, "prediction": s.prediction}) + "\n" for s in samples if not s.error))
    proc = cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(data), "--results", str(tmp_path / "scored"))
    assert proc.returncode == 0, proc.stderr
    (scored_dir,) = run_dirs(tmp_path / "scored")
    scored, _ = load_run(scored_dir)
    assert scored["metrics"]["overall"] == record["metrics"]["overall"]
    assert scored["metrics"]["groups"] == record["metrics"]["groups"]


def test_unknown_missing_and_duplicate_ids_are_reported(data, tmp_path):
    preds = tmp_path / "preds.jsonl"
    rows = [{"id": "test-0", "prediction": "yes"}, {"id": "test-0", "prediction": "no"},
            {"id": "nope-1", "prediction": "x"}, {"id": "nope-2", "prediction": "x"}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(data), "--results", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "1 duplicate ids (first kept): test-0" in err
    assert "2 ids not among the evaluated samples (ignored): nope-1, nope-2" in err
    # the two data errors (missing image, escaping path) are skipped, not "without a prediction"
    assert "37 samples without a prediction (scored as wrong): test-1, test-2, test-3, test-4, test-7" in err
    (run_dir,) = run_dirs(tmp_path / "r")
    record, samples = load_run(run_dir)
    assert len(samples) == 40  # missing ones are scored, not dropped
    assert record["metrics"]["overall"]["exact_match"]["n"] == 38 and record["n_errors"] == 37
    assert len(record["warnings"]) == 3


def test_malformed_predictions_line(data, tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "test-0", "prediction": "yes"}\n{"id": 1,\n')
    proc = cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(data), "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "preds.jsonl:2: not valid JSON" in " ".join(proc.stderr.split())
