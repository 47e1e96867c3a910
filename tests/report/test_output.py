"""Report files are never half-written under their final name, CSV cells cannot run as
spreadsheet formulas, and control characters from model output are shown as escapes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from medharness.errors import UserError
from medharness.report.analysis import analyze_modality
from medharness.report.document import md_escape, visible
from medharness.report.leaderboard import write_leaderboard
from medharness.report.output import csv_text, remove_stale_temps, write_file
from tests.core.helpers import REPO
from tests.report.conftest import sample

VISIBLE_CASES = [
    ("plain text", "plain text"),
    ("a\x00b", "a\\x00b"),
    ("bell\x07 escape\x1b[31m", "bell\\x07 escape\\x1b[31m"),
    ("del\x7f c1\x85", "del\\x7f c1\\x85"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("bad bytes \ufffd\ufffd", "bad bytes \\ufffd\\ufffd"),
    ("bidi \u202eevil\u202c", "bidi \\u202eevil\\u202c"),
    ("zero\u200bwidth \ufeffbom", "zero\\u200bwidth \\ufeffbom"),
    ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
    ("unicode é 中文 ✓", "unicode é 中文 ✓"),
]


@pytest.mark.parametrize("raw, shown", VISIBLE_CASES)
def test_visible_escapes_what_cannot_be_seen(raw, shown):
    assert visible(raw) == shown


def test_markdown_shows_the_escape_literally():
    assert md_escape("a\x00b") == "a\\\\x00b"  # renders as a\x00b


def test_reports_show_control_characters_from_model_output_escaped(make_run, results, tmp_path):
    garbage = "tok\x00\x01\u202eend"
    make_run(model="tiny\x1b", samples=[sample(0, prediction=garbage), sample(1)])
    out = tmp_path / "out"
    written = write_leaderboard(results, out) + analyze_modality(results, out)
    for path in (p for p in written if p.suffix in (".md", ".html")):  # the CSV keeps the data as it is
        text = path.read_text(encoding="utf-8")
        assert not any(ch in text for ch in "\x00\x01\x1b\u202e"), path.name
    html = (out / "modality.html").read_text(encoding="utf-8")
    assert "tok\\x00\\x01\\u202eend" in html and "tiny\\x1b" in html
    assert "tok\\\\x00\\\\x01\\\\u202eend" in (out / "modality.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cell):
    frame = pd.DataFrame({"system": [cell, "safe"], "value": [-0.5, 0.25]})
    back = pd.read_csv(io.StringIO(csv_text(frame)), keep_default_na=False)
    assert list(back["system"]) == ["'" + cell, "safe"]
    assert list(back["value"]) == [-0.5, 0.25]  # numbers stay numbers


def test_leaderboard_csv_is_neutralised(make_run, results, tmp_path):
    make_run(model="=cmd|' /C calc'!A0")
    write_leaderboard(results, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert set(frame["system"]) == {"'=cmd|' /C calc'!A0"} and set(frame["model"]) == {"'=cmd|' /C calc'!A0"}


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".leaderboard.html.{dead.pid}.partial"
    live = tmp_path / f".leaderboard.csv.{os.getppid()}.partial"
    other = tmp_path / ".hidden.partial"
    for path in (stale, live, other):
        path.write_text("half")
    assert remove_stale_temps(tmp_path) == [stale]
    assert live.exists() and other.exists() and not stale.exists()


def test_a_full_disk_is_one_line_and_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    target = write_file(tmp_path / "report.html", "old complete report")

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(UserError, match=r"^disk full while writing .*report.html; free space and run the same command again$"):
        write_file(target, "new report")
    assert target.read_text() == "old complete report" and os.listdir(tmp_path) == ["report.html"]


CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from medharness.report import output
    from medharness.report.leaderboard import write_leaderboard

    real_fsync = os.fsync
    def slow_fsync(fd):  # the temp file holds the new report, not yet renamed: the kill lands here
        print("writing", flush=True)
        time.sleep(60)
        real_fsync(fd)
    output.os.fsync = slow_fsync
    write_leaderboard(Path(sys.argv[1]), Path(sys.argv[2]))
""")


def test_a_report_killed_while_writing_leaves_the_previous_complete_file(make_run, results, tmp_path):
    make_run(model="first", samples=[sample(i) for i in range(20)])
    out = tmp_path / "out"
    write_leaderboard(results, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    make_run(model="second", samples=[sample(i) for i in range(20)], warnings=["long warning " * 5000])  # a larger new report
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(results), str(out)], env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    finals = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert finals == before  # every final name holds the previous complete report
    leftovers = [p for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers and all(p.name.endswith(f".{child.pid}.partial") for p in leftovers)
    written = write_leaderboard(results, out)  # the next report cleans up and writes complete files
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert b"second" in (out / "leaderboard.html").read_bytes()
