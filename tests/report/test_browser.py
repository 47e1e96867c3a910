"""The pages render in a real browser: tables and images present, no script error, and a
hostile model answer stays text."""

import re

import pytest

from medharness.report.analysis import analyze_modality
from medharness.report.selection import analyze_selection
from medharness.report.leaderboard import write_leaderboard
from tests.report.conftest import mv, sample

ATTACK = "<script>document.title='pwned'</script>"


def attribute(dom: str, name: str) -> str:
    match = re.search(rf'<html[^>]*\s{name}="([^"]*)"', dom)
    assert match, f"{name} missing: the page's script did not finish"
    return match.group(1)


@pytest.mark.browser
def test_pages_render_in_headless_chromium(make_run, results, tmp_path, chromium):
    groups = {"modality": {"ct": {"closed_accuracy": mv(0.5)}, "xray": {"closed_accuracy": mv(0.3, n=5, small=True)}}}
    for ratio in (0.25, 0.5):
        make_run(model="df", ratio=ratio, random_weights=True, groups=groups,
                 samples=[sample(0, prediction=ATTACK), sample(1, modality="xray", source="derived")])
    out = tmp_path / "out"
    write_leaderboard(results, out), analyze_modality(results, out), analyze_selection(results, out)
    for name, tables in (("leaderboard", 3), ("modality", 3), ("selection", 3)):
        page = out / f"{name}.html"
        dom = chromium(page, "--virtual-time-budget=10000", "--dump-dom")
        assert attribute(dom, "data-report-ready") == "1"
        assert attribute(dom, "data-script-errors") == "0"
        images = len(re.findall(r"<img\b", dom))
        assert images >= 1 and attribute(dom, "data-images-loaded") == str(images)
        assert len(re.findall(r"<table\b", dom)) >= tables
        assert "pwned" not in dom.split("<body")[0]  # the answer did not run as a script
        if name == "modality":
            assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
        shot = tmp_path / f"{name}.png"
        chromium(page, "--window-size=1200,1600", f"--screenshot={shot}")
        assert shot.stat().st_size > 10_000
