"""SLAKE loader: split JSONs with the images extracted (imgs/) or zipped (imgs.zip, the
BoKelvin/SLAKE repository layout); English and Chinese cards."""

from __future__ import annotations

from collections import Counter

import pytest

from medharness.errors import UserError
from tests.tasks.test_medvqa_common import by_id, fixture_dir, load


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return fixture_dir(tmp_path_factory, "slake")


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    return fixture_dir(tmp_path_factory, "slake-hf")


def test_english_card_keeps_english_questions(original):
    test = load("slake", original)
    assert len(test) == 14 and {s.metadata["language"] for s in test} == {"en"}
    assert {split: len(load("slake", original, split)) for split in ("train", "val")} == {"train": 21, "val": 5}


def test_metadata_comes_from_the_data(original):
    s = by_id(load("slake", original))["11000"]
    assert s.references == ["Yes"] and s.answer_type == "closed"
    assert s.images[0].path == "imgs/xmlab110/source.jpg" and (original / s.images[0].path).is_file()
    for key, value in {"modality": "xray", "modality_source": "dataset", "organ": "chest", "content_type": "organ",
                       "base_type": "vqa", "language": "en", "answer_type_dataset": "closed"}.items():
        assert s.metadata[key] == value, key
    assert {s.metadata["modality"] for s in load("slake", original)} == {"ct", "mri", "xray"}


def test_closed_answers_that_are_not_yes_no(original):
    s = by_id(load("slake", original))["11002"]
    assert s.references == ["Liver"] and s.answer_type == "closed"
    assert s.metadata["answer_type_yesno"] == "open"


def test_chinese_card(original):
    test = load("slake-zh", original)
    assert [s.id for s in test] == ["11005", "11006", "11007", "11013", "11014", "11015"]
    assert by_id(test)["11005"].question == "图中包含肝脏吗?"
    assert Counter((s.references[0], s.answer_type, s.metadata["answer_type_yesno"]) for s in test) == {
        ("是", "closed", "closed"): 1, ("否", "closed", "closed"): 3, ("左肺", "open", "open"): 2}


def test_escaping_and_missing_images_in_the_folder_layout(original):
    test = by_id(load("slake", original))
    assert "escapes the data folder" in test["11019"].error
    assert test["11018"].error is None and not (original / test["11018"].images[0].path).exists()


def test_zip_layout_reads_image_bytes_and_refuses_bad_names(original, zipped):
    folder, archive = by_id(load("slake", original)), by_id(load("slake", zipped))
    assert folder.keys() == archive.keys()
    image = archive["11000"].images[0]
    assert image.path == "imgs/xmlab110/source.jpg"
    assert image.data == (original / "imgs/xmlab110/source.jpg").read_bytes()
    assert "escapes the image archive" in archive["11019"].error
    assert "not found in imgs.zip" in archive["11018"].error
    assert [s.metadata for s in archive.values()] == [s.metadata for s in folder.values()]


def test_folder_without_images(tmp_path, original):
    (tmp_path / "test.json").write_text((original / "test.json").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UserError, match="SLAKE images missing"):
        load("slake", tmp_path)
    with pytest.raises(UserError, match="not a SLAKE folder; expected train.json"):
        load("slake", tmp_path, "train")


def test_zip_layout_data_errors_have_their_categories(zipped):
    from medharness.runner import data_problem

    archive = by_id(load("slake", zipped))
    assert data_problem(archive["11018"]).category == "missing image"
    assert data_problem(archive["11019"]).category == "path outside the data folder"
    assert data_problem(archive["11000"]) is None
