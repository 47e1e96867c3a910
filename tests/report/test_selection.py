"""The selection study: ratio sweeps and strategy/levels ablations, decided by paired tests."""

import csv

from medharness.report.document import Score
from medharness.report.selection import analyze_selection, best_of
from tests.report.conftest import mv, sample
from tests.report.test_analysis import by_modality, mixed_samples


def csv_rows(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_best_of_in_the_metric_direction():
    scores = [Score(0.5), Score(0.7), Score(0.7), Score(None)]
    assert best_of(scores) == [1, 2]
    assert best_of(scores, lower_is_better=True) == [0]
    assert best_of([Score(None)]) == []


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
    rows = csv_rows(out / "selection.csv")
    overall = [r for r in rows if r["group"] == "all samples" and r["task"] == "vqarad"]
    assert [(r["selection_ratio"], r["value"]) for r in overall] == [("0.25", "0.4"), ("0.5", "0.8"), ("1.0", "0.6")]
    # mean over the four samples without error: (3 x 250 + 550) / 4 and (3 x 0.25 + 0.75) / 4
    assert (overall[0]["visual_tokens_per_sample"], overall[0]["seconds_per_sample"]) == ("325.0", "0.375")
    assert (overall[0]["fresh_rows"], overall[0]["rows"]) == ("4", "4")
    xray = next(r for r in rows if r["group"] == "xray" and r["selection_ratio"] == "0.25")
    assert (xray["visual_tokens_per_sample"], xray["images"]) == ("550.0", "biomedical")
    html = (out / "selection.html").read_text(encoding="utf-8")
    assert "Biomedical images: best setting per task and group: vqarad all samples (df): r=0.5" in html
    assert "General images: best setting per task and group: pope all samples (df): all equal." in html
    assert "chartqa" not in html.split("<h2>Runs</h2>")[0]
    assert html.count('src="data:image/png;base64,') == 2


def answers(right: set[int], n: int = 40) -> list:
    return [sample(i, prediction="yes" if i in right else "no") for i in range(n)]


def test_overlapping_cis_are_separated_by_the_paired_test(make_run, results, tmp_path):
    # r=1.0 is right on items 0-27, the released r=0.5 on 0-19 (a subset), r=0.25 on 2-27 and 30.
    # Their own CIs (half width 0.15) all overlap; paired on the same 40 items, r=0.5 loses 8
    # discordant items of 8 (McNemar p = 2 / 2^8), r=0.25 splits 2 against 1 (p = 1).
    plan = {0.25: set(range(2, 28)) | {30}, 0.5: set(range(20)), 1.0: set(range(28))}
    for ratio, right in plan.items():
        value = len(right) / 40
        make_run(model="df", ratio=ratio, overall={"closed_accuracy": mv(value, n=40, half=0.15)},
                 groups={"modality": {"ct": {"closed_accuracy": mv(value, n=40, half=0.15)}}}, samples=answers(right))
    out = tmp_path / "out"
    analyze_selection(results, out)
    rows = {(r["group"], r["selection_ratio"]): r for r in csv_rows(out / "selection.csv")}
    best = rows[("all samples", "1.0")]
    assert (best["vs_best"], best["delta_vs_released"], best["p_vs_released"]) == ("best", "0.2", "0.0078125")
    assert float(best["delta_ci_low"]) > 0
    assert rows[("all samples", "0.5")]["vs_best"] == "differs"
    assert rows[("all samples", "0.25")]["vs_best"] == "not distinguishable"
    assert rows[("ct", "0.25")]["vs_best"] == "not distinguishable"  # the same test within the modality
    html = (out / "selection.html").read_text(encoding="utf-8")
    assert "+20.0 [" in html and "McNemar p=0.00781 n=40" in html
    summary = html.split("<h2>Which setting is best")[1].split("</table>")[0]
    assert summary.count("<td>r=0.25</td>") == 2  # all samples and ct: r=0.25 ties with the best, r=0.5 does not


def test_seconds_come_from_fresh_rows_only(make_run, results, tmp_path):
    for ratio in (0.5, 1.0):
        rows = [sample(i, seconds=1.0) for i in range(3)] + [sample(3, seconds=9.0, cached=True)]
        make_run(model="df", ratio=ratio, samples=rows)
    out = tmp_path / "out"
    analyze_selection(results, out)
    overall = [r for r in csv_rows(out / "selection.csv") if r["group"] == "all samples"]
    assert [(r["seconds_per_sample"], r["fresh_rows"], r["rows"]) for r in overall] == [("1.0", "3", "4")] * 2
    assert "1.000 (3 of 4 fresh)" in (out / "selection.html").read_text(encoding="utf-8")


def test_strategies_and_levels_are_one_study_with_tests_against_the_released_setting(make_run, results, tmp_path):
    settings = [({"selection": "similarity"}, 0.5, set(range(20))), ({"selection": "random"}, 0.5, set(range(12))),
                ({"selection": "random"}, 0.25, set(range(10))), ({"levels": "low"}, None, set(range(20)))]
    for generation, ratio, right in settings:
        make_run(model="df", ratio=ratio, generation=generation, samples=answers(right),
                 overall={"closed_accuracy": mv(len(right) / 40, n=40)})
    make_run(model="df", ratio=0.5, generation={"selection": "random"}, task="pope", samples=answers({1}))  # alone
    out = tmp_path / "out"
    analyze_selection(results, out)
    rows = [r for r in csv_rows(out / "selection.csv") if r["group"] == "all samples"]
    assert [r["task"] for r in rows] == ["vqarad"] * 4
    by_setting = {r["setting"]: r for r in rows}
    released = by_setting["selection=similarity levels=default r=0.5"]
    assert released["delta_vs_released"] == ""
    random_half = by_setting["selection=random levels=default r=0.5"]
    assert (random_half["delta_vs_released"], random_half["p_vs_released"]) == ("-0.2", "0.0078125")
    assert by_setting["selection=default levels=low r=default"]["vs_best"] == "best"
    html = (out / "selection.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 1  # one plot for the study
    assert "released setting" in html
