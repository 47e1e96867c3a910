"""The three outcomes of a sample on a parquet task (POPE's Hugging Face layout) with one
undecodable and one missing image: every adapter, the ones that never open images included,
skips exactly those records, no n counts them, and the console and the leaderboard say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medharness.fixtures.base import write_fixture
from tests.core.helpers import cli, load_run, run_dirs

UNDECODABLE, NO_IMAGE = "3", "7"


@pytest.fixture(scope="module")
def pope(tmp_path_factory) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = write_fixture("pope", tmp_path_factory.mktemp("pope"))
    (path,) = (folder / "data").glob("test-*.parquet")
    schema = pq.read_schema(path)
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        if row["id"] == UNDECODABLE:
            row["image"] = {"bytes": b"\x89PNG\r\n\x1a\n but cut off here", "path": "image.jpg"}
        if row["id"] == NO_IMAGE:
            row["image"] = None
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return folder


def only_run(results: Path) -> tuple[dict, list]:
    (run_dir,) = run_dirs(results)
    return load_run(run_dir)


def test_every_adapter_skips_the_same_records(pope, tmp_path):
    outcomes = {}
    for model in ("constant", "mock"):
        proc = cli("run", "--task", "pope", "--model", model, "--data-dir", str(pope), "--results", str(tmp_path / model), "--quiet")
        assert proc.returncode == 0, proc.stderr
        outcomes[model] = only_run(tmp_path / model)
        summary = " ".join(proc.stderr.split())
        assert "28 scored, 2 skipped: 1 missing image, 1 undecodable image" in summary, summary
    _, rows = outcomes["constant"]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r.id, "prediction": "yes"}) + "\n" for r in rows))
    proc = cli("score", "--task", "pope", "--predictions", str(preds), "--data-dir", str(pope), "--results", str(tmp_path / "score"))
    assert proc.returncode == 0, proc.stderr
    outcomes["replay"] = only_run(tmp_path / "score")
    for model, (record, samples) in outcomes.items():
        skipped = {s.id: s for s in samples if s.outcome == "data_error"}
        assert sorted(skipped) == [UNDECODABLE, NO_IMAGE], model
        assert skipped[UNDECODABLE].skip_reason == "undecodable image" and "image.jpg" in skipped[UNDECODABLE].error
        assert all(s.scores == {} for s in skipped.values())
        assert record["n_samples"] == 28 and record["n_skipped"] == 2 and record["n_errors"] == 0, model
        assert record["skipped"] == {"missing image": 1, "undecodable image": 1}
        assert all(v["n"] == 28 for v in record["metrics"]["overall"].values()), model
        assert sum(cell["pope_accuracy"]["n"] for cell in record["metrics"]["groups"]["category"].values()) == 28
    # constant and replay both answer "yes" everywhere: the same items give the same numbers
    assert outcomes["replay"][0]["metrics"] == outcomes["constant"][0]["metrics"]

    everything = tmp_path / "all"
    everything.mkdir()
    for folder in ("constant", "mock", "score"):
        (run_dir,) = run_dirs(tmp_path / folder)
        run_dir.rename(everything / run_dir.name)
    proc = cli("report", "--results", str(everything), "--out", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stderr
    markdown = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert "| errors | skipped | run |" in markdown
    assert markdown.count(": 1 missing image, 1 undecodable image") == 3
