"""Modality breakdown, with hand-checked numbers."""

import csv

import pytest

from medharness.errors import UserError
from medharness.report.analysis import analyze_modality
from medharness.report.selection import analyze_selection
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


def test_task_filter_without_runs_is_one_clear_error(make_run, results, tmp_path):
    make_run(task="vqarad")
    for study in (analyze_modality, analyze_selection):
        with pytest.raises(UserError, match="no complete runs of task\\(s\\) pathvqa .*tasks with runs: vqarad"):
            study(results, tmp_path / "out", tasks=["pathvqa"])


def test_every_page_starts_with_the_random_weights_warning(make_run, results, tmp_path):
    from medharness.report.cost import analyze_cost
    from medharness.report.leaderboard import write_leaderboard
    from medharness.report.selection import analyze_selection

    for ratio in (0.25, 0.5):
        make_run(model="df", ratio=ratio, random_weights=True, groups=by_modality(0.5, 0.5), samples=mixed_samples())
    for study in (write_leaderboard, analyze_modality, analyze_selection, analyze_cost):
        page = study(results, tmp_path)[-1]
        body = page.read_text(encoding="utf-8").split("<body", 1)[1]
        first = body.index("<p class=")
        assert body[first:].startswith('<p class="warning">Rows marked &#x27;random weights&#x27;'), page.name
