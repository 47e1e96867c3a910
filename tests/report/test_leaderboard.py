"""The leaderboard files: headline columns with CI and n, superseded runs, published rows."""

import csv
from pathlib import Path

import pytest

from medharness.errors import UserError
from medharness.report.leaderboard import write_leaderboard
from medharness.report.published import load_published
from tests.report.conftest import mv

PUBLISHED = """
- {model: Paper model, task: vqarad, metric: closed_accuracy, value: 77.4, source: "Paper A (2024)", definition: same rule}
- {model: Paper model, task: vqarad, metric: "source:token_f1", value: 59.6, source: "Paper A (2024)"}
- {model: Other paper, task: slake, metric: closed_accuracy, value: 90.4, source: "Paper B"}
- {model: Val paper, task: vqarad, split: validation, metric: closed_accuracy, value: 50.0, source: "Paper C"}
"""


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_leaderboard_files_hold_values_ci_n_and_supersession(make_run, results, tmp_path):
    make_run(model="mock", run_id="mock-old", finished="2025-01-01T00:00:00Z", overall={"closed_accuracy": mv(0.25)})
    make_run(model="mock", run_id="mock-new", finished="2025-02-01T00:00:00Z",
             overall={"closed_accuracy": mv(0.625, n=8, small=True), "open_token_f1": mv(0.5)})
    make_run(model="df", ratio=0.5, random_weights=True, run_id="df-half")
    make_run(model="x", run_id="still-running", status="running")
    out = tmp_path / "out"
    written = write_leaderboard(results, out)
    assert [p.name for p in written] == ["leaderboard.md", "leaderboard.csv", "leaderboard.html"]
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    # 0.625 with CI (0.575, 0.675) shown x100, with n and the small-group flag
    assert "| mock | 62.5 [57.5, 67.5] n=8 (small group) |" in md
    assert "| df r=0.5 [random weights] | 60.0 [55.0, 65.0] n=40 |" in md
    assert "| mock-old | vqarad | mock |" in md and "mock-new |" in md.split("Superseded")[1]
    assert "still-running" in md.split("Not finished")[1]
    rows = read_csv(out / "leaderboard.csv")
    headline = [r for r in rows if r["headline"] == "True"]
    assert {(r["system"], r["value"], r["kind"]) for r in headline} == {
        ("mock", "0.625", "measured"), ("df r=0.5", "0.6", "random weights")}
    assert all(r["run_id"] != "mock-old" for r in rows)


def test_published_rows_only_under_matching_task_split_and_metric(make_run, results, tmp_path):
    make_run(model="mock", run_id="m")
    out = tmp_path / "out"
    out.mkdir()
    (out / "published.yaml").write_text(PUBLISHED, encoding="utf-8")
    write_leaderboard(results, out)
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    headline_table = md.split("## Headline metric per task")[1].split("##")[0]
    assert "| Paper model [published] | 77.4 (published) |" in headline_table
    assert "Other paper" not in headline_table and "Val paper" not in headline_table
    published = md.split("## Published numbers")[1]
    assert "source:token_f1 | 59.6 |" in published and "no (no measured column" in published
    rows = [r for r in read_csv(out / "leaderboard.csv") if r["kind"] == "published"]
    assert [(r["system"], r["metric"], r["value"]) for r in rows] == [("Paper model", "closed_accuracy", "0.774")]
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert 'class="badge reference">published' in html


def test_bad_published_file_is_one_line_error(make_run, results, tmp_path):
    make_run()
    out = tmp_path / "out"
    out.mkdir()
    (out / "published.yaml").write_text("- {model: m, task: t, metric: x, value: high, source: s}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"entry 1: value") as info:
        write_leaderboard(results, out)
    assert "\n" not in str(info.value)


def test_shipped_published_numbers_are_valid_and_cited():
    entries = load_published(Path(__file__).resolve().parents[2] / "reports" / "published.yaml")
    assert len(entries) >= 30
    assert all(e.source and e.metric for e in entries)
    dragonfly = {(e.task, e.metric): e.value for e in entries if e.model == "Dragonfly-Med v1"}
    assert dragonfly[("vqarad", "source:closed_accuracy")] == 77.4 and dragonfly[("peir-gross", "cider")] == 179.9


def test_no_runs_is_a_user_error(results, tmp_path):
    with pytest.raises(UserError, match="no runs found"):
        write_leaderboard(results, tmp_path / "out")
