"""`medharness report --baseline SYSTEM`: a paired difference column per headline metric."""

import csv

import pytest

from medharness.errors import UserError
from medharness.report.leaderboard import write_leaderboard
from tests.report.conftest import mv, sample


def answers(right: set[int], ids: range = range(40)) -> list:
    return [sample(i, prediction="yes" if i in right else "no") for i in ids]


def make_pair(make_run):
    # majority right on 0-19; df right on 0-27 but without rows for items 38 and 39 (skipped)
    make_run(model="majority", samples=answers(set(range(20))), overall={"closed_accuracy": mv(0.5)})
    make_run(model="df", samples=answers(set(range(28)), range(38)), overall={"closed_accuracy": mv(28 / 38)})


def test_delta_column_with_paired_ci_and_left_out_items(make_run, results, tmp_path):
    make_pair(make_run)
    out = tmp_path / "out"
    write_leaderboard(results, out, baseline="majority")
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "vqarad: vs majority" in markdown
    # common items 0-37: df gains 8 discordant items, loses none
    assert "+21.1 [" in markdown and "McNemar p=0.00781 n=38 (2 items in only one run left out)" in markdown
    row = next(r for r in csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8"))
               if r["system"] == "df" and r["headline"] == "True")
    assert (row["baseline"], row["delta_p"], row["delta_n"]) == ("majority", "0.0078125", "38")
    assert float(row["delta"]) == pytest.approx(8 / 38)
    assert "baseline" in markdown.split("| majority")[1].split("\n")[0]


def test_unknown_or_ambiguous_baseline_is_one_line(make_run, results, tmp_path):
    make_pair(make_run)
    with pytest.raises(UserError, match="--baseline 'nosuch' is no system in the results; systems: df, majority"):
        write_leaderboard(results, tmp_path / "out", baseline="nosuch")
    for ratio in (0.25, 0.5):
        make_run(model="dragon", ratio=ratio)
    with pytest.raises(UserError, match="names 2 systems"):
        write_leaderboard(results, tmp_path / "out", baseline="dragon")
    write_leaderboard(results, tmp_path / "out", baseline="dragon r=0.5")


def test_cli_option(make_run, results, tmp_path):
    from tests.core.helpers import cli

    make_pair(make_run)
    done = cli("report", "--results", str(results), "--out", str(tmp_path / "out"), "--baseline", "majority")
    assert done.returncode == 0 and "vs majority" in (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    refused = cli("report", "--results", str(results), "--out", str(tmp_path / "out"), "--baseline", "nosuch")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (refused.stdout + refused.stderr).strip().splitlines() == [
        "error: --baseline 'nosuch' is no system in the results; systems: df, majority"]
