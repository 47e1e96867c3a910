"""`medharness run` on each caption fixture: every caption metric overall and by modality, with
Java present and with Java hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medharness.cli import main
from medharness.fixtures.base import write_fixture
from medharness.metrics.caption import COCO_OUTPUTS, JAVA_MISSING
from medharness.metrics.coco_java import java_available

ALL = [*COCO_OUTPUTS, "rouge_l_sample"]
RUNS = [  # task, fixture, split, modality groups
    ("iuxray", "iuxray", "test", ["xray"]),
    ("iuxray", "iuxray-openi", "all", ["xray"]),
    ("peir-gross", "peir-gross", "test", ["gross"]),
    ("roco", "roco", "test", ["ct", "mri", "ultrasound", "unknown", "xray"]),
    ("mimic-cxr", "mimic-cxr", "test", ["xray"]),
    ("mimic-cxr", "mimic-cxr-r2gen", "test", ["xray"]),
]


def cli(*args: str) -> None:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    assert done.value.code == 0


def run(tmp_path: Path, task: str, fixture: str, split: str, model: str = "mock") -> dict:
    data = write_fixture(fixture, tmp_path / "data")
    cli("run", "--task", task, "--model", model, "--data-dir", str(data), "--split", split,
        "--results", str(tmp_path / "results"), "--quiet")
    (record,) = (tmp_path / "results").glob("*/run.json")
    return json.loads(record.read_text())


@pytest.mark.java
@pytest.mark.skipif(not java_available(), reason="needs a Java runtime")
@pytest.mark.parametrize("task, fixture, split, groups", RUNS, ids=[r[1] for r in RUNS])
def test_run_reports_every_caption_metric_overall_and_by_modality(tmp_path, task, fixture, split, groups):
    record = run(tmp_path, task, fixture, split)
    overall = record["metrics"]["overall"]
    assert list(overall) == ALL
    assert all(overall[name]["value"] is not None and overall[name]["n"] > 0 for name in ALL)
    assert overall["rouge_l_sample"]["ci"] is not None and overall["cider"]["ci"] is None
    by_modality = record["metrics"]["groups"]["modality"]
    assert sorted(by_modality) == groups
    for table in by_modality.values():
        assert list(table) == ALL and table["bleu_1"]["value"] is not None
    assert JAVA_MISSING not in record["warnings"]


def test_run_without_java_reports_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-java"))
    record = run(tmp_path, "peir-gross", "peir-gross", "test")
    overall = record["metrics"]["overall"]
    assert all(overall[name]["value"] is None for name in COCO_OUTPUTS)
    assert overall["rouge_l_sample"]["value"] is not None
    assert JAVA_MISSING in record["warnings"]
    assert record["metrics"]["groups"]["modality"]["gross"]["rouge_l_sample"]["n"] == 17


@pytest.mark.java
@pytest.mark.skipif(not java_available(), reason="needs a Java runtime")
def test_mimic_cxr_r2gen_run_and_score_equal_a_direct_pycocoevalcap_call(tmp_path):
    from tests.metrics.test_caption_metrics import direct_pycocoevalcap

    record = run(tmp_path, "mimic-cxr", "mimic-cxr-r2gen", "test", model="majority")
    (run_dir,) = (tmp_path / "results").glob("*/")
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    # the empty report is left out; the image escaping the data folder is in n unless it is a data error
    counted = [r for r in rows if r.get("outcome", "scored") != "data_error"]
    assert len(rows) == 10 and len(counted) in (9, 10)
    expected = direct_pycocoevalcap()([r["prediction"] for r in counted], [r["references"] for r in counted])
    overall = record["metrics"]["overall"]
    assert overall["cider"]["n"] == len(counted)
    for name, value in expected.items():
        assert overall[name]["value"] == pytest.approx(value, abs=1e-12), name
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"id": r["id"], "prediction": r["prediction"]}) + "\n" for r in rows if not r.get("error")))
    cli("score", "--task", "mimic-cxr", "--predictions", str(predictions), "--data-dir", str(tmp_path / "data" / "mimic-cxr-r2gen"),
        "--results", str(tmp_path / "scored"))
    (again,) = (tmp_path / "scored").glob("*/run.json")
    assert json.loads(again.read_text())["metrics"]["overall"] == overall
