"""A new dataset in a known layout is one card and no code: the card goes into a temporary
cards folder ($MEDHARNESS_CARDS) and `medharness run` reads it like a shipped one."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml

from medharness.cli import main
from medharness.fixtures.base import write_fixture
from medharness.fixtures.general import png, write_split

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cards(tmp_path, monkeypatch):
    root = tmp_path / "cards"
    (root / "tasks").mkdir(parents=True)
    shutil.copytree(REPO / "models", root / "models")
    monkeypatch.setenv("MEDHARNESS_CARDS", str(root))
    return root


def write_card(cards: Path, name: str, based_on: str, **changes) -> None:
    card = yaml.safe_load((REPO / "tasks" / f"{based_on}.yaml").read_text())
    card.update(changes)
    (cards / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(card))


def run_mock(task: str, data: Path, results: Path) -> list[dict]:
    with pytest.raises(SystemExit) as done:
        main(["run", "--task", task, "--model", "mock", "--data-dir", str(data), "--results", str(results), "--quiet"])
    assert done.value.code == 0
    (samples,) = results.glob("*/samples.jsonl")
    return [json.loads(line) for line in samples.read_text().splitlines()]


def test_a_vqarad_layout_card_with_its_own_modality(cards, tmp_path):
    write_card(cards, "rad-xray", "vqarad", options={"modality": "xray"})
    rows = run_mock("rad-xray", write_fixture("vqarad", tmp_path / "data"), tmp_path / "results")
    assert len(rows) == 20 and {(r["metadata"]["modality"], r["metadata"]["modality_source"]) for r in rows} == {("xray", "card")}
    # The shipped card still derives modality from the organ.
    assert {r["metadata"]["organ"] for r in rows} >= {"chest", "abd"}


def test_a_parquet_vqa_card_with_its_own_column_mapping(cards, tmp_path):
    rng, data = random.Random(0), tmp_path / "data"
    write_split(data, "data", "test", [
        {"uid": f"q{i}", "prompt_text": f"What is shown? ({i})", "golds": ["a lung", "lung"], "picture": png(rng, f"{i}.png"),
         "kind": "radiograph" if i % 2 else "scan"}
        for i in range(6)
    ])
    write_card(cards, "my-vqa", "textvqa", splits=["test"], split="test", group_by=["kind"], options={
        "id_column": "uid", "question_column": "prompt_text", "answer_column": "golds", "image_column": "picture",
        "metadata_columns": {"kind": "kind"}, "modality_key": "kind", "modality_map": {"radiograph": "xray"},
    })
    rows = run_mock("my-vqa", data, tmp_path / "results")
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(6)]
    assert rows[1]["prompt"].startswith("What is shown? (1)\n") and rows[1]["references"] == ["a lung", "lung"]
    assert all(r["outcome"] == "scored" and r["images"] == [f"{i}.png"] for i, r in enumerate(rows))
    assert [r["metadata"]["modality"] for r in rows[:2]] == ["unknown", "xray"]
    assert {r["metadata"]["modality_source"] for r in rows} == {"derived"}


def test_an_image_name_template_inserts_only_plain_fields(cards, tmp_path, capsys):
    write_card(cards, "bad-name", "textvqa", options={"image_name": "{image_id.__class__}.jpg"})
    with pytest.raises(SystemExit) as done:
        main(["validate", str(cards / "tasks" / "bad-name.yaml")])
    assert done.value.code == 2
    assert "option 'image_name': prompt field {image_id.__class__} is not a plain {name} field" in capsys.readouterr().err
