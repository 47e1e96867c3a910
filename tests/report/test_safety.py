"""Untrusted text from runs (answers, questions, model names, warnings) is shown as text."""

import re

from medharness.report.analysis import analyze_modality
from medharness.report.selection import analyze_selection
from medharness.report.html import CSP, esc
from medharness.report.leaderboard import write_leaderboard
from tests.report.conftest import sample

ATTACK = "<script>alert(1)</script>"
IMG_ATTACK = '<img src=x onerror="alert(2)">'


def test_everything_from_runs_is_escaped_in_every_page(make_run, results, tmp_path):
    hostile = [sample(i, prediction=ATTACK if i == 0 else IMG_ATTACK, modality="ct") for i in range(3)]
    for ratio in (0.25, 0.5):
        make_run(model=ATTACK, ratio=ratio, samples=hostile, warnings=[IMG_ATTACK],
                 definitions={"closed_accuracy": ATTACK}, headline="closed_accuracy")
    out = tmp_path / "out"
    pages = write_leaderboard(results, out) + analyze_modality(results, out) + analyze_selection(results, out)
    html_pages = [p for p in pages if p.suffix == ".html"]
    assert len(html_pages) == 3
    for page in html_pages:
        text = page.read_text(encoding="utf-8")
        assert ATTACK not in text and "<img src=x" not in text
        assert len(re.findall(r"<script\b", text)) == 1  # the page's own, admitted by the CSP hash
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert esc(CSP) in text and "http" not in text.split("<body>")[1]
    modality_html = (out / "modality.html").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in modality_html  # the answer, shown in the examples
    md = (out / "modality.md").read_text(encoding="utf-8")
    assert ATTACK not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
