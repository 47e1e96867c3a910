"""The explorer in a real browser: every filter is applied through the page's own controls and the
counts shown are checked against the samples (and against the leaderboard's n); hostile text in
a question, an answer and a metadata value stays text; no console error."""

from __future__ import annotations

import json

import pytest

from medharness.report import explorer
from medharness.report.explorer import write_explorers
from medharness.report.runs import load_runs
from tests.report.cdp import Browser
from tests.report.conftest import chromium_binary
from tests.report.explorer_case import HAS_OUTCOMES, ONERROR_ATTACK, SCRIPT_ATTACK, make_two_systems

SET = """(function(filter, value){var c=document.querySelector('[data-filter="'+filter+'"]');
if(c.type==='checkbox'){c.checked=value;c.dispatchEvent(new Event('change'));}
else if(c.type==='search'){c.value=value;c.dispatchEvent(new Event('input'));}
else{c.value=value;if(c.value!==value)throw new Error('no option '+value+' in '+filter);c.dispatchEvent(new Event('change'));}})"""
READ = """JSON.stringify({shown:+document.documentElement.getAttribute('data-shown'),count:+document.getElementById('count').textContent,
rows:document.querySelectorAll('#tbody tr').length,ids:Array.prototype.map.call(document.querySelectorAll('#tbody tr'),function(r){return r.getAttribute('data-id');}),
n:Array.prototype.map.call(document.querySelectorAll('#summary tr[data-system] td.n'),function(td){return +td.textContent;})})"""


def verdict(row) -> str:
    if getattr(row, "outcome", "scored") == "data_error":
        return "data_error"
    if row.error:
        return "model_error"
    score = next((row.scores[m] for m in ("closed_accuracy", "open_token_f1") if row.scores.get(m) is not None), None)
    return "unscored" if score is None else "correct" if score >= 1 else "wrong" if score <= 0 else "partly"


@pytest.fixture
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium not installed: apt-get install chromium")
    opened = Browser(binary, tmp_path / "profile")
    yield opened
    opened.close()


@pytest.mark.browser
def test_every_filter_counts_what_the_samples_say(make_run, results, tmp_path, browser):
    made = make_two_systems(make_run, tmp_path / "data")
    alpha, beta = made["alpha"], made["beta"]
    [page] = write_explorers(results, tmp_path / "out")
    runs = {r.system.model: r for r in load_runs(results).current}
    browser.open(page.resolve().as_uri())

    def apply(*settings) -> dict:
        for control in ("g.modality", "g.organ", "g.answer_type", "v.0", "v.1", "outcome", "sort"):
            browser.evaluate(f"{SET}({json.dumps(control)}, '')")
        browser.evaluate(f"{SET}('disagree', false)"), browser.evaluate(f"{SET}('q', '')")
        for control, value in settings:
            browser.evaluate(f"{SET}({json.dumps(control)}, {json.dumps(value)})")
        shown = json.loads(browser.evaluate(READ))
        assert shown["shown"] == shown["count"] == shown["rows"]  # 12 samples: one page
        return shown

    def n(system: str, key: str = "", group: str = "") -> int:
        metrics = runs[system].record.metrics
        table = metrics.groups[key][group] if key else metrics.overall
        return table["closed_accuracy"].n

    everything = apply()
    assert everything["shown"] == 12 and everything["n"] == [n("alpha"), n("beta")]
    for modality in ("ct", "xray", "pathology"):
        got = apply(("g.modality", modality))
        assert got["shown"] == sum(r.metadata["modality"] == modality for r in alpha)
        assert got["n"] == [n("alpha", "modality", modality), n("beta", "modality", modality)]
    got = apply(("g.organ", ONERROR_ATTACK))
    assert got["ids"] == ["5"] and got["n"] == [n("alpha", "organ", ONERROR_ATTACK), n("beta", "organ", ONERROR_ATTACK)]
    assert apply(("g.organ", "chest"))["shown"] == sum(r.metadata["organ"] == "chest" for r in alpha)
    assert apply(("g.answer_type", "open"))["ids"] == [r.id for r in alpha if r.answer_type == "open"]
    for index, rows in ((0, alpha), (1, beta)):
        for wanted in ("correct", "wrong", "model_error"):
            assert apply((f"v.{index}", wanted))["ids"] == [r.id for r in rows if verdict(r) == wanted], (index, wanted)
    both = apply(("v.0", "correct"), ("v.1", "wrong"))
    assert both["ids"] == [a.id for a, b in zip(alpha, beta) if verdict(a) == "correct" and verdict(b) == "wrong"]
    disagree = [a.id for a, b in zip(alpha, beta) if "data_error" not in (verdict(a), verdict(b))
                and a.scores != b.scores]
    assert apply(("disagree", True))["ids"] == disagree
    assert apply(("outcome", "model_error"))["ids"] == ["6"]
    if HAS_OUTCOMES:
        skipped = apply(("outcome", "data_error"))
        assert skipped["ids"] == ["9"] and skipped["n"] == [1, 0]  # a data error is in no n
    search = apply(("q", "LEFT LUNG"))
    assert search["ids"] == [r.id for r in alpha if r.references == ["left lung"]]
    assert apply(("q", "kidney"))["ids"] == sorted({r.id for rows in (alpha, beta) for r in rows if "kidney" in r.prediction}, key=int)
    ordered = apply(("sort", "0:closed_accuracy:asc"))["ids"]
    closed = [r for r in alpha if r.scores["closed_accuracy"] is not None]
    assert ordered[: len(closed)] == [r.id for r in sorted(closed, key=lambda r: (r.scores["closed_accuracy"], int(r.id)))]

    page_state = json.loads(browser.evaluate("""JSON.stringify({pwned:document.documentElement.getAttribute('data-pwned'),
        title:document.title,scripts:document.scripts.length,xImages:document.querySelectorAll('img[src="x"]').length,
        text:document.body.textContent,thumbs:Array.prototype.filter.call(document.querySelectorAll('img.thumb'),function(i){return i.naturalWidth>0;}).length,
        sources:Array.prototype.map.call(document.querySelectorAll('img.thumb'),function(i){return i.src.slice(0,23);})})"""))
    apply()
    assert page_state["pwned"] is None and page_state["title"] == "vqarad: samples and answers"
    assert page_state["scripts"] == 2 and page_state["xImages"] == 0
    assert SCRIPT_ATTACK in page_state["text"] and ONERROR_ATTACK in page_state["text"]
    assert "\\x00\\u202e" in page_state["text"]  # control and bidi characters shown as escapes
    assert browser.console_errors() == []


@pytest.mark.browser
@pytest.mark.parametrize("inline_limit", [explorer.INLINE_LIMIT, 0], ids=["embedded", "sidecar"])
def test_thumbnails_load_and_a_missing_image_says_why(make_run, results, tmp_path, browser, monkeypatch, inline_limit):
    make_two_systems(make_run, tmp_path / "data")
    monkeypatch.setattr(explorer, "INLINE_LIMIT", inline_limit)
    [page] = write_explorers(results, tmp_path / "out")
    browser.open(page.resolve().as_uri())
    browser.wait_for("Array.prototype.every.call(document.images,function(i){return i.complete;})")
    state = json.loads(browser.evaluate("""JSON.stringify({loaded:Array.prototype.filter.call(document.querySelectorAll('img.thumb'),
        function(i){return i.naturalWidth>0&&i.naturalWidth<=160;}).length,all:document.querySelectorAll('img.thumb').length,
        missing:document.querySelector('tr[data-id="11"] .noimg').textContent})"""))
    assert state["loaded"] == state["all"] == 11
    assert "image not found" in state["missing"]
    browser.evaluate("document.querySelector('tr[data-id=\"0\"] img.thumb').click()")
    assert browser.evaluate("document.getElementById('viewer').style.display") == "flex"
    assert browser.evaluate("document.getElementById('big').naturalWidth") > 160
    assert browser.console_errors() == []
