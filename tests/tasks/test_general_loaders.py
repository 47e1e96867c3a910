"""The general-domain task plugins on their generated fixtures (lmms-lab parquet layouts)."""

from pathlib import Path
from typing import Optional

import pytest

from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.fixtures.general import WRITERS
from medharness.images import open_image
from medharness.registry import TASK_PLUGINS
from medharness.schema import GenerationSettings

# task -> number of samples its fixture yields
COUNTS = {
    "ai2d": 24, "scienceqa-img": 24, "mmmu": 32, "mmmu-health": 20, "mmvet": 20, "pope": 30,
    "pope-adversarial": 10, "pope-popular": 10, "pope-random": 10, "textvqa": 20, "chartqa": 24,
    "gqa": 20, "mmbench": 24, "seedbench": 24,
}


def fixture_name_for(task: str) -> Optional[str]:
    """The fixture that holds a general task's data (mmmu-health reads the mmmu fixture)."""
    if task in WRITERS:
        return task
    prefix = task.split("-")[0]
    return prefix if prefix in WRITERS else None


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("general")


def load(task, root, split=None):
    card = load_task_card(task)
    folder = write_fixture(fixture_name_for(task), root) if root is not None else None
    plugin = TASK_PLUGINS.get(card.format)(card)
    return plugin, list(plugin.load(folder, split or card.split))


@pytest.mark.parametrize("task", sorted(COUNTS))
def test_every_task_loads_its_fixture(task, data_root):
    plugin, samples = load(task, data_root)
    assert len(samples) == COUNTS[task]
    assert len({s.id for s in samples}) == len(samples), "sample ids must be unique"
    card = plugin.card
    for sample in samples:
        assert sample.metadata["modality"]
        for key in card.group_by:
            assert key in sample.metadata, (key, sample.id)
        if sample.error is None:
            assert sample.references
            assert all(open_image(ref).mode == "RGB" for ref in sample.images)
        # the prompt never depends on the gold answer
        other_gold = sample.model_copy(update={"references": ["ZZZ"]})
        prompt = plugin.request(sample, GenerationSettings()).prompt
        assert prompt == plugin.request(other_gold, GenerationSettings()).prompt


def test_multiple_choice_gold_and_options(data_root):
    _, samples = load("ai2d", data_root)
    first = samples[0]
    assert first.id == "0" and len(first.choices) == 4
    assert first.references[0] in "ABCD" and first.answer_type == "closed"
    assert first.metadata["modality"] == "diagram"


def test_scienceqa_hint_becomes_context(data_root):
    _, samples = load("scienceqa-img", data_root)
    assert not samples[0].question.startswith("Context:")  # empty hint
    assert samples[1].question.startswith("Context: Look at the map 1.\n")
    assert samples[1].metadata["subject"] == "social science"


def test_mmmu_multi_image_subject_and_open_items(data_root):
    plugin, samples = load("mmmu", data_root)
    by_id = {s.id: s for s in samples}
    two = by_id["validation_Basic_Medical_Science_2"]
    assert len(two.images) == 2 and "<image 2>" in two.question
    assert [ref.path for ref in two.images] == ["image_1.png", "image_2.png"]
    assert two.metadata["subject"] == "Basic_Medical_Science"
    open_item = by_id["validation_Basic_Medical_Science_4"]
    assert open_item.choices is None and open_item.answer_type == "open" and open_item.references == ["12.5"]
    prompt = plugin.request(open_item, GenerationSettings()).prompt
    assert "single word or phrase" in prompt and "letter" not in prompt
    assert "letter" in plugin.request(two, GenerationSettings()).prompt


def test_mmmu_modality_from_image_type_is_derived(data_root):
    _, samples = load("mmmu", data_root)
    seen = {(tuple(s.metadata["image_type"]), s.metadata["modality"]) for s in samples}
    assert (("Tables",), "document") in seen and (("Plots and Charts",), "chart") in seen
    assert (("Body Scans: MRI, CT scans, and X-rays",), "unknown") in seen  # CT, MRI or X-ray: not guessed
    assert {s.metadata["modality_source"] for s in samples} == {"derived"}


def test_mmmu_health_keeps_the_medicine_subjects(data_root):
    _, samples = load("mmmu-health", data_root)
    assert {s.metadata["subject"] for s in samples} == {
        "Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health",
    }


def test_pope_ids_are_unique_although_question_ids_restart(data_root):
    _, samples = load("pope", data_root)
    assert len({s.metadata["question_id"] for s in samples}) == 10
    assert len({s.id for s in samples}) == 30
    assert {s.metadata["category"] for s in samples} == {"adversarial", "popular", "random"}
    _, random_only = load("pope-random", data_root)
    assert {s.metadata["category"] for s in random_only} == {"random"}


def test_mmbench_circular_copies(data_root):
    _, samples = load("mmbench", data_root)
    copies = [s for s in samples if s.metadata["circular_index"] == "0"]
    assert [s.id for s in copies] == ["0", "1000000", "2000000", "3000000"]
    assert [s.metadata["circular_copy"] for s in copies] == [0, 1, 2, 3]
    # the same gold option text in every rotation
    assert len({s.choices["ABCD".index(s.references[0])] for s in copies}) == 1
    two_options = next(s for s in samples if s.id == "3")
    assert len(two_options.choices) == 2  # empty C and D columns end the option list
    assert not two_options.question.startswith("Context:")  # missing hint


def test_seedbench_video_rows_left_out(data_root):
    _, samples = load("seedbench", data_root)
    assert {s.metadata["data_type"] for s in samples} == {"image"}
    assert samples[0].metadata["dimension"] == "Scene Understanding"


def test_textvqa_ten_answers_and_train_split(data_root):
    _, samples = load("textvqa", data_root)
    assert all(len(s.references) == 10 for s in samples)
    _, train = load("textvqa", data_root, split="train")
    assert len(train) == 12


def test_chartqa_question_source(data_root):
    _, samples = load("chartqa", data_root)
    assert [s.metadata["question_source"] for s in samples].count("human") == 12
    assert {s.metadata["modality"] for s in samples} == {"chart"}


def test_gqa_joins_images_and_reports_a_missing_one(data_root):
    _, samples = load("gqa", data_root)
    errors = [s for s in samples if s.error]
    assert len(errors) == 1 and "n999999" in errors[0].error
    assert samples[0].images and samples[0].metadata["structural_type"] == "verify"


def test_mmvet_capabilities_are_a_list(data_root):
    _, samples = load("mmvet", data_root)
    assert all(isinstance(s.metadata["capability"], list) for s in samples)
    assert samples[0].metadata["capability_set"] == ",".join(samples[0].metadata["capability"])


def test_offline_without_data_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(UserError) as err:
        load("pope", None)
    message = str(err.value)
    assert "\n" not in message and "--data-dir" in message and "MEDHARNESS_POPE_DIR" in message


def test_missing_split_files_and_unknown_split(tmp_path, data_root):
    with pytest.raises(UserError, match="no test-\\*.parquet"):
        plugin = TASK_PLUGINS.get("parquet_vqa")(load_task_card("pope"))
        list(plugin.load(tmp_path, "test"))
    with pytest.raises(UserError, match="has no split 'train'"):
        load("pope", data_root, split="train")
    with pytest.raises(UserError, match="does not exist"):
        list(plugin.load(tmp_path / "nowhere", "test"))


def test_corrupt_parquet_is_a_user_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test-00000-of-00001.parquet").write_bytes(b"not parquet")
    plugin = TASK_PLUGINS.get("parquet_vqa")(load_task_card("pope"))
    with pytest.raises(UserError, match="not a readable parquet file"):
        list(plugin.load(tmp_path, "test"))


def test_fixtures_are_deterministic(tmp_path):
    a = write_fixture("mmbench", tmp_path / "a")
    b = write_fixture("mmbench", tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    assert files == [Path("en/dev-00000-of-00001.parquet")]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
