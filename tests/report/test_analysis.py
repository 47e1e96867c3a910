"""Modality breakdown and selection-ratio study, with hand-checked numbers."""

import csv

import pytest

from medharness.errors import UserError
from medharness.report.analysis import analyze_modality, analyze_selection, best_ratio
from medharness.report.document import Score
from tests.report.conftest import mv, sample


def by_modality(ct: float, xray: float) -> dict:
    return {"modality": {"ct": {"closed_accuracy": mv(ct, n=30)}, "xray": {"closed_accuracy": mv(xray, n=6, small=True)}},
            "organ": {"head": {"closed_accuracy": mv(ct)}}}


def mixed_samples(tokens: int = 1000, seconds: float = 0.5) -> list:
    # ct derived from organ, xray given by the dataset; one failed sample must not count in the costs
    rows = [sample(i, modality="ct", source="derived", visual_tokens=tokens, seconds=seconds) for i in range(3)]
    rows += [sample(3, modality="xray", visual_tokens=tokens + 300, seconds=seconds * 3)]
    rows += [sample(4, modality="xray", error="image missing", visual_tokens=None, seconds=None)]
    return rows


def test_modality_tables_charts_and_derived_note(make_run, results, tmp_path):
    make_run(model="mock", groups=by_modality(0.5, 0.25), samples=mixed_samples())
    make_run(model="other", groups=by_modality(0.75, 1.0), samples=mixed_samples())
    make_run(task="slake", model="mock", groups=by_modality(0.1, 0.1))
    out = tmp_path / "out"
    written = analyze_modality(results, out, tasks=["vqarad"])
    assert [p.name for p in written] == ["modality.md", "modality.csv", "modality.html"]
    md = (out / "modality.md").read_text(encoding="utf-8")
    assert "slake" not in md
    assert "DERIVED, not given by the dataset, for 3 of 5 samples (ct: 3 of 3)" in md
    assert "| ct (derived) | 50.0 [45.0, 55.0] n=30 | 75.0 [70.0, 80.0] n=30 |" in md
    assert "| xray | 25.0 [20.0, 30.0] n=6 (small group) | 100.0 [95.0, 100.0] n=6 (small group) |" in md
    assert "### vqarad: by organ" in md
    html = (out / "modality.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 2  # modality and organ charts
    with (out / "modality.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3  # two models x (ct, xray, head)
    ct = next(r for r in rows if r["system"] == "other" and r["group"] == "ct")
    assert (ct["derived"], ct["value"], ct["n"], ct["small"]) == ("True", "0.75", "30", "False")


def test_a_cards_constant_is_marked_like_a_derived_label(make_run, results, tmp_path):
    rows = [sample(i, modality="natural", source="card") for i in range(2)] + [sample(2, modality="xray")]
    make_run(model="mock", groups={"modality": {"natural": {"closed_accuracy": mv(0.5)},
                                                "xray": {"closed_accuracy": mv(1.0)}}}, samples=rows)
    analyze_modality(results, tmp_path, tasks=["vqarad"])
    md = (tmp_path / "modality.md").read_text(encoding="utf-8")
    assert "for 2 of 3 samples (natural: 2 of 2)" in md
    assert "| natural (derived) |" in md and "| xray |" in md


def test_best_ratio_and_ties():
    scores = [Score(0.5, low=0.4, high=0.6), Score(0.7, low=0.62, high=0.78), Score(0.65, low=0.55, high=0.75), Score(None)]
    assert best_ratio([0.25, 0.5, 0.75, 1.0], scores) == ([0.5], [0.75])
    assert best_ratio([0.25], [Score(None)]) == ([], [])
    level = [Score(0.3, low=0.2, high=0.4), Score(0.3, low=0.25, high=0.35), Score(0.1, low=0.0, high=0.26)]
    assert best_ratio([0.25, 0.5, 1.0], level) == ([0.25, 0.5], [1.0])


def test_selection_sweep_metric_costs_and_answer(make_run, results, tmp_path):
    for ratio, value in ((0.25, 0.4), (0.5, 0.8), (1.0, 0.6)):
        make_run(model="df", ratio=ratio, overall={"closed_accuracy": mv(value, half=0.02)},
                 groups=by_modality(value, value - 0.1), samples=mixed_samples(int(1000 * ratio), ratio))
    for ratio in (0.5, 1.0):
        make_run(model="df", ratio=ratio, task="pope", headline="pope_f1", definitions={"pope_prf": "P/R/F1"},
                 overall={"pope_f1": mv(0.9)}, samples=[sample(i, modality="natural") for i in range(2)])
    make_run(model="df", ratio=0.5, task="chartqa", samples=[sample(0, modality="chart")])  # one ratio: no sweep
    make_run(model="mock")  # no ratio: not a sweep
    out = tmp_path / "out"
    written = analyze_selection(results, out)
    assert [p.name for p in written] == ["selection.csv", "selection.html"]
    with (out / "selection.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    overall = [r for r in rows if r["group"] == "all samples" and r["task"] == "vqarad"]
    assert [(r["selection_ratio"], r["value"]) for r in overall] == [("0.25", "0.4"), ("0.5", "0.8"), ("1.0", "0.6")]
    # mean over the four samples without error: (3 x 250 + 550) / 4 and (3 x 0.25 + 0.75) / 4
    assert (overall[0]["visual_tokens_per_sample"], overall[0]["seconds_per_sample"]) == ("325.0", "0.375")
    xray = next(r for r in rows if r["group"] == "xray" and r["selection_ratio"] == "0.25")
    assert (xray["visual_tokens_per_sample"], xray["images"]) == ("550.0", "biomedical")
    html = (out / "selection.html").read_text(encoding="utf-8")
    assert "Biomedical images: best ratio per task and group: vqarad all samples (df): r=0.5" in html
    assert "General images: best ratio per task and group: pope all samples (df): all equal." in html
    assert "chartqa" not in html.split("<h2>Runs</h2>")[0]
    assert html.count('src="data:image/png;base64,') == 2


def test_selection_without_sweeps_says_how_to_make_one(make_run, results, tmp_path):
    make_run(model="mock")
    analyze_selection(results, tmp_path / "out")
    html = (tmp_path / "out" / "selection.html").read_text(encoding="utf-8")
    assert "No selection-ratio sweeps" in html and "--selection-ratio" in html


def test_task_filter_without_runs_is_one_clear_error(make_run, results, tmp_path):
    make_run(task="vqarad")
    for study in (analyze_modality, analyze_selection):
        with pytest.raises(UserError, match="no complete runs of task\\(s\\) pathvqa .*tasks with runs: vqarad"):
            study(results, tmp_path / "out", tasks=["pathvqa"])


def test_best_ratio_for_a_lower_is_better_metric():
    scores = [Score(0.30, low=0.25, high=0.35), Score(0.10, low=0.05, high=0.15), Score(0.12, low=0.08, high=0.16)]
    assert best_ratio([0.25, 0.5, 1.0], scores, lower_is_better=True) == ([0.5], [1.0])
