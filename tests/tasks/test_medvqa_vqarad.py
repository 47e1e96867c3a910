"""VQA-RAD loader: the release JSON + image folder, and the Hugging Face parquet copy."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from medharness.errors import UserError
from tests.tasks.test_medvqa_common import by_id, fixture_dir, load


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return fixture_dir(tmp_path_factory, "vqarad")


def test_splits_follow_phrase_type(original):
    train, test = load("vqarad", original, "train"), load("vqarad", original, "test")
    assert [s.id for s in train] == [str(i) for i in range(1, 25)]
    assert [s.id for s in test] == [str(i) for i in range(25, 45)]
    assert {s.metadata["phrase_type"] for s in test} == {"test_freeform", "test_para"}


def test_metadata_of_a_chest_question(original):
    s = by_id(load("vqarad", original))["25"]
    assert s.references == ["yes"] and s.answer_type == "closed"
    assert s.images[0].path == "VQA_RAD Image Folder/synpic1008.jpg"
    for key, value in {"modality": "xray", "modality_source": "derived", "organ": "chest", "question_type": ["PRES"],
                       "language": "en", "paraphrase": False, "linked_id": "link025"}.items():
        assert s.metadata[key] == value, key


def test_comma_joined_question_types_become_lists(original):
    test = by_id(load("vqarad", original))
    assert test["26"].metadata["question_type"] == ["SIZE", "ABN"]
    assert test["30"].metadata["question_type"] == ["POS", "PRES"]


def test_paraphrases_are_flagged_and_linked(original):
    para = [s for s in load("vqarad", original) if s.metadata["paraphrase"]]
    assert [(s.id, s.metadata["linked_id"]) for s in para] == [("29", "link028"), ("34", "link033"), ("39", "link038"), ("44", "link043")]


def test_modality_is_derived_from_organ(original):
    pairs = {(s.metadata["organ"], s.metadata["modality"]) for s in load("vqarad", original)}
    assert pairs == {("chest", "xray"), ("abd", "ct"), ("head", "unknown")}


def test_the_two_closed_definitions_give_different_denominators(original):
    dataset = load("vqarad", original)
    yesno = load("vqarad", original, answer_type_definition="yesno")
    assert Counter(s.answer_type for s in dataset) == {"closed": 12, "open": 8}
    assert Counter(s.answer_type for s in yesno) == {"closed": 11, "open": 9}
    left, open_yes = by_id(dataset)["28"], by_id(dataset)["32"]
    assert left.references == ["left"]  # CLOSED, not yes/no
    assert (left.metadata["answer_type_dataset"], left.metadata["answer_type_yesno"]) == ("closed", "open")
    assert open_yes.references == ["yes"]  # released as "OPEN " with a trailing space
    assert (open_yes.metadata["answer_type_dataset"], open_yes.metadata["answer_type_yesno"]) == ("open", "closed")
    assert {s.metadata["answer_type_definition"] for s in yesno} == {"yesno"}


def test_numeric_answer_becomes_text(original):
    assert by_id(load("vqarad", original))["31"].references == ["2"]


def test_escaping_and_missing_images(original):
    test = by_id(load("vqarad", original))
    assert "escapes the data folder" in test["44"].error
    assert test["43"].error is None and not (original / test["43"].images[0].path).exists()


def test_hf_copy(tmp_path_factory):
    hf = fixture_dir(tmp_path_factory, "vqarad-hf")
    test = load("vqarad", hf)
    assert [s.id for s in test] == [str(i) for i in range(18)]
    assert all(s.metadata["modality"] == "unknown" and "organ" not in s.metadata for s in test)
    assert Counter(s.answer_type for s in test) == {"closed": 10, "open": 8}
    assert len(load("vqarad", hf, "train")) == 24


def test_bad_release_files(tmp_path):
    release = tmp_path / "VQA_RAD Dataset Public.json"
    release.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load("vqarad", tmp_path)
    release.write_text(json.dumps([{"qid": 1, "question": "q"}, {"qid": 2, "image_name": "a.jpg", "question": None,
                                                                  "answer": "yes", "phrase_type": "test_freeform"}]))
    first, second = load("vqarad", tmp_path)  # data errors of those records; nothing else usable stops a run
    assert first.id == "1" and first.skip_reason == "malformed record"
    assert first.error == "VQA_RAD Dataset Public.json: record 0: lacks image_name, answer, phrase_type; is this the VQA-RAD release?"
    assert second.error == "VQA_RAD Dataset Public.json: record 1: 'question' must be a string, got null"
