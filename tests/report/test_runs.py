"""Which runs count: newest complete per task+model+settings; versions and definitions never mixed."""

import os
from pathlib import Path

import pytest

from medharness.errors import SkippedWarning, UserError
from medharness.report.labels import evaluation_labels, run_labels
from medharness.report.runs import load_runs
from tests.report.conftest import mv


def test_newest_complete_run_counts_and_older_ones_are_superseded(make_run, results):
    make_run(model="mock", run_id="old", finished="2025-01-01T10:00:00+00:00")
    make_run(model="mock", run_id="new", finished="2025-03-01T10:00:00+00:00")
    make_run(model="mock", run_id="middle", finished="2025-02-01T10:00:00Z")
    make_run(model="mock", run_id="unfinished", status="running")
    runs = load_runs(results)
    assert [r.run_id for r in runs.current] == ["new"]
    assert sorted((old.run_id, new.run_id) for old, new in runs.superseded) == [("middle", "new"), ("old", "new")]
    assert [r.run_id for r in runs.incomplete] == ["unfinished"]


def test_settings_versions_and_definitions_are_kept_apart(make_run, results):
    make_run(model="df", ratio=0.25)
    make_run(model="df", ratio=0.5)
    make_run(task_version="2")
    make_run(definitions={"closed_accuracy": "a different rule"})
    runs = load_runs(results)
    assert len(runs.current) == 4 and not runs.superseded
    evaluations = runs.evaluations()
    assert len(evaluations) == 3
    labels = sorted(evaluation_labels(evaluations).values())
    assert labels[0].startswith("vqarad v1 metric defs #") and labels[1].startswith("vqarad v1 metric defs #")
    assert labels[2] == "vqarad v2"
    names = sorted(run_labels(runs.current).values())
    assert names == ["df r=0.25", "df r=0.5", "mock", "mock"]


def test_one_model_keeps_one_label_across_tasks_with_different_card_defaults(make_run, results):
    # the task cards set different max_new_tokens; within one task a user override shows in the label
    make_run(task="vqarad", model="mock", ratio=0.5, run_id="a", max_new_tokens=32)
    make_run(task="chartqa", model="mock", ratio=0.5, run_id="b", max_new_tokens=16)
    make_run(task="chartqa", model="mock", ratio=0.5, run_id="c", max_new_tokens=64)
    labels = run_labels(load_runs(results).current)
    assert labels == {"a": "mock r=0.5", "b": "mock r=0.5 max_new_tokens=16", "c": "mock r=0.5 max_new_tokens=64"}


def test_headline_comes_from_options_else_first_defined_metric(make_run, results):
    make_run(task="a", headline="open_token_f1")
    make_run(task="b", headline=None, definitions={"zeta": "z", "alpha": "a"},
             overall={"zeta": mv(0.1), "alpha": mv(0.2)})
    by_task = {r.evaluation.task: r.headline for r in load_runs(results).current}
    assert by_task == {"a": "open_token_f1", "b": "zeta"}


def test_empty_or_missing_results_folder_is_one_clear_error(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        load_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no runs found") as info:
        load_runs(tmp_path / "empty")
    assert "\n" not in str(info.value)


def test_unreadable_run_files_are_listed_not_fatal(make_run, results):
    make_run(run_id="good")
    (results / "broken").mkdir()
    (results / "broken" / "run.json").write_text("{not json", encoding="utf-8")
    (results / "foreign").mkdir()
    (results / "foreign" / "run.json").write_text('{"run_id": "x"}', encoding="utf-8")
    (results / "binary").mkdir()
    (results / "binary" / "run.json").write_bytes(b'{"run_id": "\xff\xfe"}')
    (results / "pipe").mkdir()
    os.mkfifo(results / "pipe" / "run.json")  # reading it would block forever
    with pytest.warns(SkippedWarning, match=r"skipped 4 unreadable run\(s\)"):
        runs = load_runs(results)
    assert [r.run_id for r in runs.current] == ["good"]
    assert sorted(p.parent.name for p, _ in runs.unreadable) == ["binary", "broken", "foreign", "pipe"]


def test_bad_sample_lines_are_skipped_with_a_warning(make_run, results):
    folder = make_run(run_id="r")
    with (folder / "samples.jsonl").open("ab") as handle:
        handle.write(b'{"id": 5, "unknown_field": 1}\n{"id": "\xff"}\n' + b"[" * 100_000 + b"\n")
    run = load_runs(results).current[0]
    with pytest.warns(SkippedWarning) as caught:
        assert len(run.samples) == 4
    assert run.warnings == ["r: skipped 3 unreadable line(s) of samples.jsonl (line 5, 6, 7)"]
    assert [str(w.message) for w in caught] == run.warnings
