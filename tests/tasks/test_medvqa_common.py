"""What the three medical VQA loaders share: answer-type definitions, the Hugging Face path
when offline, the restricted unpickler and path containment. Helpers for the other
test_medvqa_* modules live here too."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Optional

import pytest

from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.medvqa_common import answer_type_metadata, file_image, load_plain_pickle, safe_member


def plugin(task: str, **overrides):
    card = load_task_card(task).model_copy(update=overrides)
    return TASK_PLUGINS.get(card.format)(card)


def load(task: str, data_dir: Optional[Path], split: str = "test", **overrides) -> list[Sample]:
    return list(plugin(task, **overrides).load(data_dir, split))


def by_id(samples: list[Sample]) -> dict[str, Sample]:
    return {s.id: s for s in samples}


def fixture_dir(tmp_path_factory, name: str) -> Path:
    return write_fixture(name, tmp_path_factory.mktemp(name))


# --- answer types -------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    ("yes", "closed"), ("No", "closed"), ("Yes.", "closed"), ("是", "closed"), ("否", "closed"),
    ("left", "open"), ("normal", "open"), ("yes, a nodule", "open"), ("2", "open"),
])
def test_yes_no_definition(answer, expected):
    assert answer_type_metadata([answer], None) == {"answer_type_yesno": expected}


def test_both_definitions_kept_when_the_release_has_its_own():
    assert answer_type_metadata(["left"], "closed") == {"answer_type_yesno": "open", "answer_type_dataset": "closed"}


def test_unknown_answer_type_definition_is_a_user_error(tmp_path_factory):
    data = fixture_dir(tmp_path_factory, "vqarad")
    with pytest.raises(UserError, match="answer_type_definition 'gold' is not one of dataset, yesno"):
        load("vqarad", data, answer_type_definition="gold")


def test_unknown_split_is_a_user_error(tmp_path_factory):
    data = fixture_dir(tmp_path_factory, "vqarad")
    with pytest.raises(UserError, match="no split 'val'; choose one of train, test"):
        load("vqarad", data, split="val")


def test_missing_data_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load("pathvqa", tmp_path / "nowhere")


# --- Hugging Face, offline ------------------------------------------------------------------------

@pytest.mark.parametrize("task, env", [("pathvqa", "MEDHARNESS_PATHVQA_DIR"), ("vqarad", "MEDHARNESS_VQARAD_DIR"), ("slake", "MEDHARNESS_SLAKE_DIR")])
def test_offline_without_local_copy_says_where_to_put_the_data_at_once(task, env, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(UserError) as info:
        load(task, None)
    message = str(info.value)
    assert "\n" not in message and "--data-dir" in message and env in message
    assert time.monotonic() - start < 5


# --- path containment -----------------------------------------------------------------------------

@pytest.mark.parametrize("relative, refused", [
    ("images/test/a.jpg", False), ("images/../images/a.jpg", False),
    ("../outside.jpg", True), ("images/../../outside.jpg", True), ("/etc/passwd", True),
])
def test_image_paths_stay_inside_the_data_folder(tmp_path, relative, refused):
    ref, error = file_image(tmp_path, relative)
    assert (error is not None) == refused
    assert ref.path == relative


@pytest.mark.parametrize("name, expected", [
    ("xmlab1/source.jpg", "xmlab1/source.jpg"), ("a/../b.jpg", "b.jpg"),
    ("../b.jpg", None), ("a/../../b.jpg", None), ("/abs.jpg", None), ("", None),
])
def test_zip_member_names_stay_inside_the_archive(name, expected):
    assert safe_member(name) == expected


# --- restricted unpickler -------------------------------------------------------------------------

class Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_plain_pickles_load_with_every_protocol(tmp_path):
    data = [{"img_id": "test_0001", "question_id": 7, "label": {"yes": 1.0}, "s": {1, 2}, "t": (1.5, None, True), "f": frozenset({"a"})}]
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert load_plain_pickle(path) == data


def test_a_pickle_that_calls_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    boom = Boom()
    boom.marker = str(marker)
    path = tmp_path / "test_vqa.pkl"
    path.write_bytes(pickle.dumps([{"sent": "q", "x": boom}], protocol=4))
    with pytest.raises(UserError, match=r"refusing to load .*test_vqa.pkl: it asks for pathlib\.(Posix)?Path"):
        load_plain_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"cos\nsystem\n(S'true'\ntR.", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93."])
def test_classic_exploit_pickles_are_refused(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UserError, match=r"refusing to load .*(os|posix)\.system"):
        load_plain_pickle(path)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3])[:-3])
    with pytest.raises(UserError, match="not a readable pickle"):
        load_plain_pickle(path)
