"""The cost study: one point per run, Pareto fronts by hand, fresh-row seconds, FLOPs and memory."""

import csv

import pytest

from medharness.report.cost import analyze_cost, pareto
from tests.report.conftest import mv, page_renders, sample, study_cli_works_and_refuses_a_missing_task


def test_pareto_front_by_hand():
    #        value  cost
    # 0:     0.5    10   front (cheapest)
    # 1:     0.7    20   front
    # 2:     0.6    30   dominated by 1
    # 3:     0.7    25   dominated by 1 (same value, dearer)
    # 4:     0.9    40   front
    # 5:     None   5    no value: not a point
    values, cost = [0.5, 0.7, 0.6, 0.7, 0.9, None], [10, 20, 30, 25, 40, 5]
    assert pareto(values, cost) == {0, 1, 4}
    assert pareto(values, cost, lower_is_better=True) == {0}
    assert pareto([0.5, 0.5], [10, 10]) == {0, 1}  # equal points do not dominate each other
    assert pareto([0.5], [None]) == set()


def rows_at(ratio: float, right: int, flops: float, memory: int, n: int = 40) -> list:
    rows = []
    for i in range(n):
        cost = {"flops": flops, "peak_memory_bytes": memory}
        modality = "ct" if i % 2 else "xray"
        rows.append(sample(i, modality=modality, prediction="yes" if i < right else "no", visual_tokens=int(1000 * ratio),
                           seconds=ratio, cached=i >= n - 4, extra={"cost": cost}))
    return rows


def make_sweep(make_run):
    for ratio, right, gflops in ((0.25, 20, 1.0), (0.5, 28, 2.0), (1.0, 26, 4.0)):
        make_run(model="df", ratio=ratio, random_weights=True, overall={"closed_accuracy": mv(right / 40, n=40)},
                 groups={"modality": {"ct": {"closed_accuracy": mv(0.5, n=20)}, "xray": {"closed_accuracy": mv(0.6, n=20)}}},
                 samples=rows_at(ratio, right, gflops * 1e9, int(ratio * 2**30)))
    make_run(model="majority", overall={"closed_accuracy": mv(0.55, n=40)},
             samples=[sample(i, visual_tokens=None, seconds=0.001) for i in range(40)])


def test_points_fronts_costs_and_the_scaling_sentence(make_run, results, tmp_path):
    make_sweep(make_run)
    out = tmp_path / "out"
    assert [p.name for p in analyze_cost(results, out)] == ["cost.md", "cost.csv", "cost.html"]
    with (out / "cost.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["group"] == "all samples"]
    by_system = {r["system"]: r for r in rows}
    assert set(by_system) == {"df r=0.25", "df r=0.5", "df r=1", "majority"}
    half = by_system["df r=0.5"]
    assert (half["visual_tokens_per_sample"], half["gflops_per_sample"], half["flops_rows"]) == ("500.0", "2.0", "40")
    assert (half["seconds_per_sample"], half["fresh_rows"], half["rows"], half["peak_memory_mib"]) == ("0.5", "36", "40", "512.0")
    # r=1 costs more than r=0.5 and scores less: off every front; r=0.25 is the cheapest df point
    assert by_system["df r=1"]["pareto"] == "" and "visual tokens" in by_system["df r=0.25"]["pareto"]
    # majority records no visual tokens, so it is on no token front, but its seconds are the lowest
    assert by_system["majority"]["pareto"] == "seconds / sample"
    md = (out / "cost.md").read_text(encoding="utf-8")
    assert "df, from r=0.25 to r=1: visual tokens x4.00 (250 to 1000), GFLOPs x4.00 (1 to 4)" in md
    sentence = next(line for line in md.splitlines() if line.startswith("- vqarad: df"))
    # r=0.25 right on 0-19, r=1 on 0-25: 6 discordant items of 6, McNemar p = 2 / 2^6
    assert "closed_accuracy 50.0 [" in sentence and "(paired difference +15.0 [" in sentence
    assert "McNemar p=0.0312 n=40" in sentence and "majority" not in sentence  # one setting only
    assert md.count("### vqarad:") == 3  # all samples, ct, xray
    assert "RANDOM" in md.upper().split("## ")[0]  # the random-weights warning heads the page


def test_runs_without_any_cost_say_so(make_run, results, tmp_path):
    make_run(model="replayed", samples=[sample(i, visual_tokens=None, seconds=None) for i in range(3)])
    out = tmp_path / "out"
    analyze_cost(results, out)
    md = (out / "cost.md").read_text(encoding="utf-8")
    assert "every model ran at one setting only" in md and "No run of this task recorded any cost" in md


@pytest.mark.browser
def test_page_renders_in_headless_chromium(make_run, results, tmp_path, chromium):
    make_sweep(make_run)
    assert page_renders(chromium, analyze_cost(results, tmp_path / "out")[-1]) == 3  # all samples, ct, xray


def test_cli(make_run, results, tmp_path):
    make_sweep(make_run)
    study_cli_works_and_refuses_a_missing_task("cost", results, tmp_path / "out", "slake", "vqarad")
