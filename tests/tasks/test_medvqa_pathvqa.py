"""Path-VQA loader: the original pickles + images, and the Hugging Face parquet copy."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from medharness.errors import UserError
from medharness.runner import check_usable
from tests.tasks.test_medvqa_common import by_id, fixture_dir, load


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return fixture_dir(tmp_path_factory, "pathvqa")


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    return fixture_dir(tmp_path_factory, "pathvqa-hf")


def test_original_splits_ids_and_fields(original):
    counts = {split: len(load("pathvqa", original, split)) for split in ("train", "val", "test")}
    assert counts == {"train": 24, "val": 8, "test": 20}
    test = by_id(load("pathvqa", original))
    first = test["300000"]
    assert first.question == "Is there hemorrhage?" and first.references == ["yes"]
    assert first.answer_type == "closed"
    assert first.metadata == {
        "modality": "pathology", "modality_source": "dataset", "language": "en",
        "answer_type_yesno": "closed", "answer_type_dataset": "closed", "answer_type_definition": "dataset",
        "question_type": "yes/no", "image_id": "test_0000",
    }
    assert first.images[0].path == "images/test/test_0000.jpg" and (original / first.images[0].path).is_file()
    assert Counter(s.answer_type for s in test.values()) == {"closed": 12, "open": 8}


def test_label_answers_ranked_by_score(original):
    assert by_id(load("pathvqa", original))["300006"].references == ["in the cytoplasm", "cytoplasm"]


def test_escaping_image_refused_and_missing_image_left_to_the_runner(original):
    test = by_id(load("pathvqa", original))
    assert "escapes the data folder" in test["300019"].error
    missing = test["300018"]
    assert missing.error is None and not (original / missing.images[0].path).exists()


def test_train_answers_are_skewed_for_the_baselines(original):
    answers = Counter(s.references[0] for s in load("pathvqa", original, "train"))
    assert answers.most_common(2) == [("yes", 15), ("hemorrhage", 5)]


def test_hf_copy_ids_are_row_indices_and_answer_type_falls_back_to_yes_no(hf):
    test = load("pathvqa", hf)
    assert [s.id for s in test] == [str(i) for i in range(20)]
    assert test[0].images[0].data[:2] == b"\xff\xd8"  # the embedded JPEG
    assert all("answer_type_dataset" not in s.metadata for s in test)
    assert {s.metadata["answer_type_definition"] for s in test} == {"yesno"}
    assert Counter(s.answer_type for s in test) == {"closed": 12, "open": 8}
    assert len(load("pathvqa", hf, "val")) == 8  # our "val" is the HF "validation" split


def test_not_a_pathvqa_folder(tmp_path):
    with pytest.raises(UserError, match="not a Path-VQA folder"):
        load("pathvqa", tmp_path)


def test_pickle_of_the_wrong_shape(tmp_path):
    (tmp_path / "qas").mkdir()
    (tmp_path / "qas" / "test_vqa.pkl").write_bytes(pickle.dumps([{"img_id": "a", "sent": "q"}]))
    (sample,) = load("pathvqa", tmp_path)  # a data error of that record; a file of nothing else stops the run
    assert sample.skip_reason == "malformed record"
    assert sample.error == "test_vqa.pkl: record 0: lacks question_id, label; is this the Path-VQA release?"
    with pytest.raises(UserError, match="none of the 1 records of the test split is usable; the first: test_vqa.pkl: record 0"):
        check_usable("pathvqa", "test", [sample])
