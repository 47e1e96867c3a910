"""The explorer page without a browser: what it carries, how images are re-encoded and shared,
the sidecar folder, escaping of the embedded data, old runs, links, and the command's errors."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from medharness.errors import UserError
from medharness.report import explorer
from medharness.report.explorer import write_explorers
from medharness.report.leaderboard import write_leaderboard
from medharness.runner import RunConfig, execute
from medharness.fixtures.base import write_fixture
from tests.core.helpers import cli
from tests.report.conftest import mv, sample
from tests.report.explorer_case import END_ATTACK, SCRIPT_ATTACK, make_two_systems


def page_json(page) -> dict:
    text = page.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


def decoded(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_images_are_re_encoded_once_per_content(make_run, results, tmp_path):
    make_two_systems(make_run, tmp_path / "data")
    [page] = write_explorers(results, tmp_path / "out")
    data = page_json(page)
    # img0.png and copy.png have the same bytes: three distinct images for four files
    assert len(data["images"]) == 3
    originals = {p.read_bytes() for p in (tmp_path / "data" / "images").glob("*.png")}
    for image in data["images"]:
        thumb, large = decoded(image["t"]), decoded(image["l"])
        assert thumb.format == "JPEG" and max(thumb.size) == explorer.THUMB_SIDE
        assert max(large.size) == 400  # never enlarged past the 400 x 300 original
        assert base64.b64decode(image["t"].split(",", 1)[1]) not in originals
    by_id = {s["id"]: s for s in data["samples"]}
    assert by_id["0"]["img"] == by_id["3"]["img"]  # img0 and its copy share one entry
    assert "image not found" in by_id["11"]["img"][0]


def test_embedded_data_cannot_end_its_script_element(make_run, results, tmp_path):
    make_two_systems(make_run, tmp_path / "data")
    [page] = write_explorers(results, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert len(re.findall(r"<script\b", text)) == 2 and text.count("</script>") == 2
    assert "<!--" not in text and SCRIPT_ATTACK not in text and END_ATTACK not in text
    assert page_json(page)["samples"][0]["q"].endswith(END_ATTACK)  # the text itself survives, as data


def test_sidecar_folder_when_the_images_are_too_large_to_embed(make_run, results, tmp_path, monkeypatch):
    make_two_systems(make_run, tmp_path / "data")
    monkeypatch.setattr(explorer, "INLINE_LIMIT", 1000)
    [page] = write_explorers(results, tmp_path / "out")
    folder = tmp_path / "out" / "explore-vqarad.images"
    assert len(list(folder.glob("*.jpg"))) == 6  # a thumbnail and a larger copy of each of 3 images
    data = page_json(page)
    assert all(image["t"].startswith("explore-vqarad.images/") for image in data["images"])
    text = page.read_text(encoding="utf-8")
    assert "img-src data: &#x27;self&#x27;" in text and "Images are in the folder explore-vqarad.images" in text
    stamps = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    write_explorers(results, tmp_path / "out")
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # made once, reused


def test_runs_without_image_paths_and_hub_copies_say_why_there_is_no_image(make_run, results, tmp_path):
    make_run(task="pathvqa", model="old", samples=[sample(0)])
    make_run(task="slake", model="hub", samples=[sample(0, images=["q0.png"])], data_source="hf:BoKelvin/SLAKE@main")
    pages = {p.name: page_json(p) for p in write_explorers(results, tmp_path / "out")}
    assert "no image paths recorded" in pages["explore-pathvqa.html"]["samples"][0]["img_note"]
    assert "--data-dir" in pages["explore-slake.html"]["samples"][0]["img_note"]


def test_a_run_records_its_image_paths_and_the_page_shows_them(tmp_path):
    data = write_fixture("vqarad", tmp_path / "data")
    results = tmp_path / "results"
    run_dir, _ = execute(RunConfig(task="vqarad", model="majority", data_dir=data, results_dir=results, limit=6))
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert all(r["images"] and r["images"][0].startswith("VQA_RAD Image Folder/") for r in rows)
    [page] = write_explorers(results, tmp_path / "out")
    shown = page_json(page)
    positions = [i for s in shown["samples"] for i in s["img"]]
    assert shown["images"] and len(positions) == 6 and any(isinstance(i, int) for i in positions)


def test_leaderboard_cells_and_modality_groups_link_to_the_explorer(make_run, results, tmp_path):
    from medharness.report.analysis import analyze_modality

    run = make_run(model="alpha", groups={"modality": {"ct": {"closed_accuracy": mv(0.5)}}})
    out = tmp_path / "out"
    write_leaderboard(results, out)
    assert f'href="explore-vqarad.html#run={run.name}"' in (out / "leaderboard.html").read_text(encoding="utf-8")
    analyze_modality(results, out)
    modality = (out / "modality.html").read_text(encoding="utf-8")
    assert 'href="explore-vqarad.html#g.modality=ct"' in modality
    assert f'href="explore-vqarad.html#g.modality=ct&amp;run={run.name}"' in modality


def test_out_file_with_several_pages_is_a_user_error(make_run, results, tmp_path):
    make_run(task="vqarad"), make_run(task="slake")
    with pytest.raises(UserError, match="--out names one file but there are 2 pages"):
        write_explorers(results, tmp_path, out_file=tmp_path / "one.html")
    assert not (tmp_path / "one.html").exists()


def test_view_command_writes_the_page_and_errors_are_one_line(make_run, results, tmp_path):
    make_run(task="vqarad")
    page = tmp_path / "page.html"
    done = cli("view", "--task", "vqarad", "--results", str(results), "--out", str(page))
    assert done.returncode == 0 and page.is_file() and "wrote" in done.stderr
    bad = cli("view", "--task", "nosuch", "--results", str(results))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert " ".join(bad.stderr.split()).startswith("error: no complete runs of task(s) nosuch")
