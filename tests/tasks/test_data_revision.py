"""run.json's data_source names the hub commit actually read, or says the data is a local folder."""

from __future__ import annotations

import shutil

import pytest

from medharness.cards import load_task_card
from medharness.fixtures.base import write_fixture
from medharness.registry import TASK_PLUGINS

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache holding the POPE fixture as the hub copy, its `main` at COMMIT."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "datasets--lmms-lab--POPE"
    shutil.copytree(write_fixture("pope", tmp_path / "data"), repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "data" / "pope"


def test_the_hub_commit_read_is_recorded(hub_cache):
    plugin = TASK_PLUGINS.get("parquet_vqa")(load_task_card("pope"))
    assert next(iter(plugin.load(None, "test"))).id
    assert plugin.data_source(None) == f"hf:lmms-lab/POPE@{COMMIT} (card revision main)"


def test_a_local_folder_says_it_has_no_hub_revision(hub_cache):
    plugin = TASK_PLUGINS.get("parquet_vqa")(load_task_card("pope"))
    next(iter(plugin.load(hub_cache, "test")))
    assert plugin.data_source(hub_cache) == f"local folder {hub_cache} (no hub revision: the files as found there)"
