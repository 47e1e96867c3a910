"""--image-max-side: images downscaled in one place, the setting in the spec, run id and cache key."""

import io
import json

import pytest
from PIL import Image

from medharness.errors import UserError
from medharness.images import fit_long_side, open_image
from medharness.runner import RunConfig, execute, with_max_side
from medharness.schema import GenerationSettings, ImageRef, Request
from tests.core.helpers import cli, jsonl_fixture


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_long_side_is_capped_aspect_kept_never_upscaled():
    assert fit_long_side(Image.new("RGB", (300, 200)), 100).size == (100, 67)
    assert fit_long_side(Image.new("RGB", (200, 300)), 100).size == (67, 100)
    assert fit_long_side(Image.new("RGB", (1000, 1)), 10).size == (10, 1)  # never 0 pixels
    assert fit_long_side(Image.new("RGB", (50, 40)), 100).size == (50, 40)
    assert fit_long_side(Image.new("RGB", (50, 40)), None).size == (50, 40)


def test_the_runner_marks_request_images_and_open_image_downscales():
    request = Request(sample_id="1", prompt="q", images=[ImageRef(path="a.png", data=png(640, 480))],
                      generation=GenerationSettings(image_max_side=320))
    marked = with_max_side(request)
    assert [i.max_side for i in marked.images] == [320]
    assert open_image(marked.images[0]).size == (320, 240)
    plain = Request(sample_id="1", prompt="q", images=request.images)
    assert with_max_side(plain) is plain and open_image(plain.images[0]).size == (640, 480)


def test_setting_is_in_the_spec_run_id_and_cache_key(tmp_path):
    data = jsonl_fixture(tmp_path / "data")
    results = tmp_path / "results"
    _, plain = execute(RunConfig(task="custom-jsonl", model="mock", data_dir=data, results_dir=results))
    run_dir, small = execute(RunConfig(task="custom-jsonl", model="mock", data_dir=data, results_dir=results, image_max_side=64))
    assert small.spec.generation.image_max_side == 64 and plain.spec.generation.image_max_side is None
    assert "-px64__" in run_dir.name and small.spec_hash != plain.spec_hash
    assert small.n_cached == 0  # another setting, another cache key


def test_cli_option_and_bad_values(tmp_path):
    data = jsonl_fixture(tmp_path / "data")
    done = cli("run", "--task", "custom-jsonl", "--model", "mock", "--data-dir", str(data), "--results",
               str(tmp_path / "results"), "--image-max-side", "32", "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads(next((tmp_path / "results").glob("*/run.json")).read_text())
    assert record["spec"]["generation"]["image_max_side"] == 32
    with pytest.raises(UserError, match=r"^bad generation settings \(task card, model card .mock. or command line\): image_max_side: Input should be greater than or equal to 1 \(got 0\)$"):
        execute(RunConfig(task="custom-jsonl", model="mock", data_dir=data, results_dir=tmp_path / "r", image_max_side=0))
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*/run.json"))
