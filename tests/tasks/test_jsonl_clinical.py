"""custom-jsonl with real DICOM and NIfTI files: views pinned and recorded at load, card and
record settings, bad files as per-sample errors, and whole runs with a baseline and dragonfly-tiny."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.registry import TASK_PLUGINS
from tests.core.helpers import cli, load_run, run_dirs

BAD = {
    "not-dicom": "not a DICOM file: scans/report.dcm",
    "no-pixels": "DICOM file has no pixel data: scans/rtplan.dcm",
    "truncated": "DICOM pixel data is truncated (the file ends before it does): scans/MR_truncated.dcm",
    "slice-out-of-range": "slice 99 is out of range: scans/anatomical.nii has 25 (slices 0..24)",
}


def without_line(error: str) -> str:
    """The reason without the `test.jsonl:N: ` the loader puts in front of a record's error."""
    return re.sub(r"^test\.jsonl:\d+: ", "", error)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_fixture("jsonl-clinical", tmp_path_factory.mktemp("clinical"))


def load(folder: Path, **options) -> dict:
    card = load_task_card("custom-jsonl")
    card = card.model_copy(update={"options": {**card.options, **options}})
    return {s.id: s for s in TASK_PLUGINS.get("jsonl")(card).load(folder, "test")}


def test_views_are_pinned_and_recorded_per_sample(data):
    samples = load(data)
    soft = samples["ct-soft-tissue"]
    assert soft.images[0].view.window_center == 40.0 and soft.images[0].view.frame == 0
    assert soft.metadata["image_views"] == [{"frame": 0, "frames": 1, "photometric": "MONOCHROME2",
                                             "image": "scans/CT_small.dcm", "window": [40.0, 400.0], "window_from": "record"}]
    assert samples["dose-frame-3"].metadata["image_views"][0]["frame"] == 3
    fmri = samples["fmri"].metadata["image_views"][0]
    assert (fmri["axis"], fmri["slice"], fmri["frame"]) == ("axial", 12, 1)
    assert {sid: without_line(s.error) for sid, s in samples.items() if s.error} == BAD


def test_a_card_window_applies_unless_the_record_gives_its_own(data):
    samples = load(data, clinical={"window_center": 0.0, "window_width": 2000.0})
    assert samples["ct"].metadata["image_views"][0]["window"] == [0.0, 2000.0]
    assert samples["ct"].metadata["image_views"][0]["window_from"] == "card"
    assert samples["ct-soft-tissue"].metadata["image_views"][0]["window"] == [40.0, 400.0]


@pytest.mark.parametrize("clinical, message", [
    ('{"window_center": "40", "window_width": 400}', r"test.jsonl:1: clinical settings \(key 'window_center': Input should be a valid number"),
    ('{"window_center": 40}', "test.jsonl:1: clinical settings .*give both or neither"),
    ('"soft tissue"', 'test.jsonl:1: "clinical" must be an object'),
])
def test_bad_clinical_settings_in_a_record_are_its_data_error(tmp_path, clinical, message):
    (tmp_path / "test.jsonl").write_text(f'{{"id": "a", "image": "a.dcm", "question": "q", "answer": "x", "clinical": {clinical}}}\n')
    sample = load(tmp_path)["a"]
    assert sample.skip_reason == "malformed record"
    assert re.search(message, sample.error) and "\n" not in sample.error


def test_bad_clinical_settings_in_the_card_stop_the_run(tmp_path):
    (tmp_path / "test.jsonl").write_text('{"id": "a", "image": "a.dcm", "question": "q", "answer": "x"}\n')
    with pytest.raises(UserError, match="option clinical"):
        load(tmp_path, clinical={"window_center": 40})


@pytest.mark.parametrize("model", ["majority", "dragonfly-tiny"])
def test_runs_end_to_end_with_the_bad_files_as_errors(data, tmp_path, model):
    results = tmp_path / "results"
    proc = cli("run", "--task", "custom-jsonl", "--model", model, "--data-dir", str(data), "--results", str(results), "--quiet",
               env={"MEDHARNESS_CACHE": str(tmp_path / "cache")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    errors = {s.id: without_line(s.error) for s in samples if s.error}
    assert errors == BAD
    assert record["n_errors"] == 4 if "n_skipped" not in record else record["n_skipped"] == 4
    good = [s for s in samples if not s.error]
    assert len(good) == 9 and all(s.metadata["image_views"] for s in good)
    if model == "dragonfly-tiny":
        assert all(s.visual_tokens for s in good)  # every view reached the model as an image


def test_a_changed_view_changes_the_data_fingerprint(data):
    from medharness.runner import data_fingerprint

    samples = load(data)
    other = {**samples, "ct": samples["ct"].model_copy(update={"images": [
        samples["ct"].images[0].model_copy(update={"view": samples["ct-soft-tissue"].images[0].view})]})}
    assert data_fingerprint(list(samples.values())) != data_fingerprint(list(other.values()))
