"""Hostile data and images, generated here: each case ends in one clear line (exit 2) or in a
per-sample data error naming the file, line and field; never a traceback, a hang or a value
silently converted. Runs of the CLI are subprocesses with a timeout; checks of one function
run in-process."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medharness.errors import UserError
from medharness.images import check_image, open_image
from medharness.images import ImageError
from medharness.schema import ImageRef
from tests.core.helpers import cli, load_run, run_dirs

TIMEOUT = 60


def png_bytes(mode: str = "RGB", size: tuple[int, int] = (8, 6), colour=(10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format="PNG")
    return out.getvalue()


def dataset(root: Path, lines: list[bytes]) -> Path:
    folder = root / "data"
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    (folder / "imgs" / "ok.png").write_bytes(png_bytes())
    (folder / "test.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return folder


def good(i: int, **fields) -> bytes:
    row = {"id": f"ok-{i}", "image": "imgs/ok.png", "question": "is it?", "answer": "yes", **fields}
    return json.dumps(row).encode()


def one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    text = " ".join(proc.stderr.split())
    for needle in needles:
        assert needle in text, text
    return text


def run_custom(folder: Path, results: Path, *extra: str, env: dict | None = None):
    return cli("run", "--task", "custom-jsonl", "--model", "constant", "--data-dir", str(folder),
               "--results", str(results), "--quiet", *extra, timeout=TIMEOUT, env=env)


def data_errors(results: Path) -> dict[str, object]:
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    assert record["status"] == "complete"
    return {s.id: s for s in samples if s.outcome == "data_error"}


# --- JSON Lines data: one run, many bad records, each a data error naming what is wrong --------

# One bad record per case (hand-written; "DEEP" stands for 100,000 nested lists): the record is
# line 2, 3, ... of the data file, after one good record.
CASES = json.loads((Path(__file__).parent / "cases" / "jsonl_records.json").read_text())
BAD_RECORDS = [(b"[" * 100_000 + b"]" * 100_000 if c["line"] == "DEEP" else c["line"].encode("utf-8", "surrogatepass"), c["id"], c["reason"])
               for c in CASES]


def test_bad_records_are_data_errors_and_the_rest_is_evaluated(tmp_path):
    lines = [good(0)] + [line for line, _, _ in BAD_RECORDS] + [good(1, choices=["PA", "lateral", "AP"], answer="AP")]
    folder = dataset(tmp_path, lines)
    proc = run_custom(folder, tmp_path / "r")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    skipped = data_errors(tmp_path / "r")
    for _, sample_id, reason in BAD_RECORDS:
        assert reason in skipped[sample_id].error, (sample_id, skipped[sample_id].error)
    assert len(skipped) == len(BAD_RECORDS)
    (run_dir,) = run_dirs(tmp_path / "r")
    record, samples = load_run(run_dir)
    assert record["n_samples"] == 2 and record["n_skipped"] == len(BAD_RECORDS)
    assert record["metrics"]["overall"]["exact_match"]["n"] == 2
    # the option's text "AP" is option C: the gold is the letter, so "A" (= PA) is not correct
    assert {s.id: s.references for s in samples}["ok-1"] == ["C"]
    summary = " ".join(proc.stderr.split())
    assert f"2 scored, {len(BAD_RECORDS)} skipped: " in summary and "1 missing image" in summary


@pytest.mark.parametrize("content, needles", [
    (b"", ["test.jsonl: the file is empty"]),
    (b"\n  \n\n", ["test.jsonl: the file is empty"]),
    ('{"id": "a"}\n'.encode("utf-16"), ["the file is UTF-16"]),
    (b'{"id": "a", "question": "caf\xe9"}\n', ["test.jsonl:1: not valid UTF-8 (byte 0xe9"]),
    (b"not json\nalso not\n", ["no line is valid JSON"]),
    (b"[1]\n[2]\n", ["none of the 2 records of the test split is usable", "a line must be a JSON object"]),
])
def test_unusable_data_file_stops_with_one_line(tmp_path, content, needles):
    folder = dataset(tmp_path, [])
    (folder / "test.jsonl").write_bytes(content)
    one_line_error(run_custom(folder, tmp_path / "r"), *needles)
    assert not list((tmp_path / "r").glob("*/run.json"))


def test_fifo_as_image_is_a_data_error_without_hanging(tmp_path):
    folder = dataset(tmp_path, [good(0), good(1, id="fifo", image="imgs/pipe.png")])
    os.mkfifo(folder / "imgs" / "pipe.png")
    started = time.perf_counter()
    proc = run_custom(folder, tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - started < TIMEOUT
    assert data_errors(tmp_path / "r")["fifo"].skip_reason == "not a regular file"


# --- predictions files for `score` ---------------------------------------------------------------

def test_predictions_that_are_not_text_are_model_errors_and_the_run_completes(tmp_path):
    folder = dataset(tmp_path, [good(0), good(1), good(2)])
    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(b'{"id": "ok-0", "prediction": "\\ud800"}\n{"id": "ok-1", "prediction": null}\n{"id": "ok-2", "prediction": "yes"}\n')
    proc = cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(folder),
               "--results", str(tmp_path / "r"), timeout=TIMEOUT)
    one_line_error(proc, "preds.jsonl:1:", "lone surrogate")
    assert not list((tmp_path / "r").glob("*/run.json"))  # stopped before a run began: none left "running"
    preds.write_bytes(b'{"id": "ok-1", "prediction": null}\n{"id": "ok-2", "prediction": "yes"}\n{"id": "ok-0", "prediction": ["yes"]}\n')
    proc = cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(folder),
               "--results", str(tmp_path / "r"), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(tmp_path / "r")
    record, samples = load_run(run_dir)
    assert record["status"] == "complete" and record["n_errors"] == 2
    errors = {s.id: s.error for s in samples if s.outcome == "model_error"}
    assert errors == {"ok-1": 'preds.jsonl:1: "prediction" must be a string, got null',
                      "ok-0": 'preds.jsonl:3: "prediction" must be a string, got a list'}


@pytest.mark.parametrize("content, needles", [
    (b"", ["preds.jsonl: the file is empty"]),
    (b'{"id": "ok-0", "prediction": "caf\xe9"}\n', ["preds.jsonl:1: not valid UTF-8"]),
    (b'[1, 2]\n', ["preds.jsonl:1: each line must be an object"]),
    (b'{"id": null, "prediction": "yes"}\n', ['preds.jsonl:1: "id" must be a string or a whole number, got null']),
])
def test_unusable_predictions_stop_with_one_line(tmp_path, content, needles):
    folder = dataset(tmp_path, [good(0)])
    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(content)
    one_line_error(cli("score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(folder),
                       "--results", str(tmp_path / "r"), timeout=TIMEOUT), *needles)


# --- Path-VQA pickles ------------------------------------------------------------------------------

def pathvqa_folder(root: Path, records: list | bytes) -> Path:
    folder = root / "pathvqa"
    (folder / "qas").mkdir(parents=True)
    (folder / "images" / "test").mkdir(parents=True)
    (folder / "images" / "test" / "ok.jpg").write_bytes(png_bytes())
    raw = records if isinstance(records, bytes) else pickle.dumps(records, protocol=2)
    (folder / "qas" / "test_vqa.pkl").write_bytes(raw)
    return folder


def run_pathvqa(folder: Path, results: Path):
    return cli("run", "--task", "pathvqa", "--model", "constant", "--data-dir", str(folder),
               "--results", str(results), "--quiet", timeout=TIMEOUT)


def record(qid, **fields):
    return {"img_id": "ok", "question_id": qid, "sent": "Is it?", "label": {"yes": 1.0},
            "answer_type": "yes/no", "question_type": "yes/no", **fields}


def test_bad_pathvqa_records_are_data_errors(tmp_path):
    records = [record(1), record(2, img_id="o\x00k"), record(3, label={"yes": "high"}), record(4, sent=None),
               record(5, label={("a",): 1.0}), "not a record", record(7, img_id="../../../x")]
    proc = run_pathvqa(pathvqa_folder(tmp_path, records), tmp_path / "r")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    skipped = data_errors(tmp_path / "r")
    assert "contains a NUL character" in skipped["2"].error
    assert "label score 'high' of 'yes' is not a number" in skipped["3"].error
    assert "'sent' must be a string, got null" in skipped["4"].error
    assert "label answer ('a',) is not text" in skipped["5"].error
    assert "record 5: lacks" in skipped["record 5"].error
    assert skipped["7"].skip_reason == "path outside the data folder"
    assert len(skipped) == 6


def shared_reference_bomb() -> bytes:
    """[{"label": {t: 1}}] where t nests 80 shared pairs: hashing it would take 2**80 steps."""
    pairs = b"h\x00h\x00\x86q\x00" * 80
    return b"\x80\x02](}(X\x05\x00\x00\x00label}" + b")q\x00" + pairs + b"K\x01sue."


def deep_label(depth: int) -> bytes:
    return b"\x80\x04](}(X\x05\x00\x00\x00label" + b"]" * depth + b"a" * (depth - 1) + b"ue."


@pytest.mark.parametrize("raw, needle", [
    (shared_reference_bomb(), "puts one list, dict or tuple in several places"),
    (deep_label(200_000), "nests deeper than 64 levels"),
    (b"\x80\x04\x95garbage", "is not a readable pickle"),
])
def test_hostile_pickle_stops_with_one_line_at_once(tmp_path, raw, needle):
    started = time.perf_counter()
    one_line_error(run_pathvqa(pathvqa_folder(tmp_path, raw), tmp_path / "r"), "refusing to load" if "nest" in needle or "places" in needle else "test_vqa.pkl", needle)
    assert time.perf_counter() - started < 20


def test_bomb_is_refused_well_under_a_second_in_process(tmp_path):
    from medharness.tasks.medvqa_common import load_plain_pickle

    path = tmp_path / "bomb.pkl"
    path.write_bytes(shared_reference_bomb())
    assert len(path.read_bytes()) < 712
    started = time.perf_counter()
    with pytest.raises(UserError, match="several places"):
        load_plain_pickle(path)
    assert time.perf_counter() - started < 0.5


# --- images, in-process -------------------------------------------------------------------------

def fake_png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def category(ref: ImageRef) -> str:
    with pytest.raises(ImageError) as caught:
        check_image(ref)
    with pytest.raises(ImageError) as opened:  # the adapters' open fails the same way
        open_image(ref)
    assert str(opened.value) == str(caught.value) and " at 0x" not in str(caught.value)
    return caught.value.category


def test_pixel_bomb_is_refused_from_the_header():
    started = time.perf_counter()
    assert category(ImageRef(path="bomb.png", data=fake_png_header(19_000, 19_000))) == "oversized image"
    assert time.perf_counter() - started < 1


def test_byte_and_pixel_caps_are_settable(monkeypatch, tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(size=(40, 40)))
    ref = ImageRef(root=str(tmp_path), path="a.png")
    check_image(ref)
    monkeypatch.setenv("MEDHARNESS_MAX_IMAGE_BYTES", "50")
    assert category(ref) == "oversized image"
    monkeypatch.setenv("MEDHARNESS_MAX_IMAGE_BYTES", "100000")
    monkeypatch.setenv("MEDHARNESS_MAX_IMAGE_PIXELS", "1000")
    assert category(ref) == "oversized image"
    monkeypatch.setenv("MEDHARNESS_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(UserError, match="MEDHARNESS_MAX_IMAGE_PIXELS='lots': must be a positive whole number"):
        check_image(ref)


def test_undecodable_bytes_name_the_image_not_an_object():
    assert category(ImageRef(path="junk.png", data=b"not an image at all")) == "undecodable image"
    assert category(ImageRef(path="cut.png", data=png_bytes(size=(64, 64))[:60])) == "undecodable image"


def sixteen_bit(values: np.ndarray) -> ImageRef:
    out = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(out, format="PNG")
    return ImageRef(path="g16.png", data=out.getvalue())


def test_sixteen_bit_grey_is_scaled_by_its_range_not_clipped():
    twelve_bit = np.arange(64 * 64).reshape(64, 64) % 4096
    rgb = np.asarray(open_image(sixteen_bit(twelve_bit)))
    assert rgb.shape == (64, 64, 3) and rgb.min() == 0 and rgb.max() == 255
    assert len(np.unique(rgb)) == 256  # 4,096 grey levels keep all 256 steps (clipping left 17)
    ramp = np.asarray(open_image(sixteen_bit(np.array([[0, 1000, 2000, 4000]]))))[0, :, 0]
    assert list(ramp) == [0, 64, 128, 255]  # linear in the image's own range
    uniform = np.asarray(open_image(sixteen_bit(np.full((4, 4), 1000))))
    assert uniform.max() == 0  # one value: black, not white


def test_float_image_scaled_by_its_range():
    out = io.BytesIO()
    Image.fromarray(np.array([[-1.0, 0.0, 1.0]], dtype=np.float32)).save(out, format="TIFF")
    assert list(np.asarray(open_image(ImageRef(path="f.tif", data=out.getvalue())))[0, :, 0]) == [0, 128, 255]


@pytest.mark.parametrize("mode, colour", [("P", 3), ("RGBA", (1, 2, 3, 4)), ("LA", (5, 6)), ("CMYK", (0, 0, 0, 0)), ("1", 1)])
def test_eight_bit_modes_still_become_rgb(mode, colour):
    out = io.BytesIO()
    Image.new(mode, (4, 4), colour).save(out, format="TIFF" if mode == "CMYK" else "PNG")
    assert open_image(ImageRef(path="m", data=out.getvalue())).mode == "RGB"


def test_text_that_is_not_unicode_never_stops_a_run():
    from medharness.runner import data_problem, score_sample, skipped_result
    from medharness.schema import Prediction, Sample

    bad = Sample(id="a", question="q", references=["\ud800"], metadata={"organ": "\udfff"})
    problem = data_problem(bad)
    assert problem.category == "malformed record" and "lone surrogate" in str(problem)
    skipped_result(bad, problem).model_dump_json()  # storable
    answered = score_sample(Sample(id="b"), None, Prediction(sample_id="b", text="x\ud800"), [], False)
    assert answered.outcome == "model_error" and "not valid Unicode" in answered.error
    answered.model_dump_json()
