"""HallusionBench (lmms-lab parquet) and ProbMed (test.json + images) on their generated
fixtures, the bad inputs each refuses in one line, and a batch-size-independent run of each."""

import json

import pytest

from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.registry import TASK_PLUGINS
from medharness.runner import RunConfig, execute
from medharness.schema import ParquetCell
from medharness.results import read_samples
from medharness.tasks.probmed import image_type_words


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hallucination")
    return {name: write_fixture(name, root) for name in ("hallusionbench", "probmed")}


def load(task, folder):
    plugin = TASK_PLUGINS.get(load_task_card(task).format)(load_task_card(task))
    return plugin, list(plugin.load(folder, plugin.card.split))


def test_hallusionbench_image_split(data):
    plugin, samples = load("hallusionbench", data["hallusionbench"])
    assert len(samples) == 24 and len({s.id for s in samples}) == 24
    first = samples[0]
    assert first.id == "VD_illusion_0_0_0" and first.references == ["no"]
    assert first.metadata["question_pair"] == "VD_illusion_0_0" and first.metadata["figure"] == "VD_illusion_0_0"
    assert (first.metadata["modality"], first.metadata["modality_source"]) == ("natural", "derived")
    assert {s.metadata["visual_input"] for s in samples} == {"1", "2"}
    # the edited figure of a question flips its answer where the edit changes the fact
    edited = next(s for s in samples if s.id == "VD_illusion_0_1_0")
    assert edited.references == ["yes"] and edited.metadata["question_pair"] == first.metadata["question_pair"]
    broken = [s for s in samples if s.error]
    assert [s.id for s in broken] == ["VS_map_0_2_1"] and broken[0].error == "row has no image"
    assert next(s for s in samples if s.metadata["subcategory"] == "chart").metadata["modality"] == "chart"


# an image cell as the parquet reader gives it: its place in the file, not its bytes
CELL = ParquetCell(file="/data/image-00000.parquet", row_group=0, row=0, column="image.bytes")


def test_hallusionbench_drops_questions_without_image_and_flags_bad_gold(data):
    plugin, _ = load("hallusionbench", data["hallusionbench"])
    row = {"category": "VS", "subcategory": "map", "visual_input": "0", "set_id": "0", "figure_id": "0",
           "question_id": "0", "question": "Is Paris in France?", "gt_answer": "1", "image": None}
    assert plugin.to_sample(row, 0) is None
    row.update(visual_input="1", figure_id="1", gt_answer="yes", image={"path": "a.png", "cell": CELL})
    sample = plugin.to_sample(row, 0)
    assert sample.error == "gt_answer 'yes' is not '1' (yes) or '0' (no)" and sample.references == []


def test_probmed_layout(data):
    _, samples = load("probmed", data["probmed"])
    assert len(samples) == 49 and len({s.id for s in samples}) == 49
    first = samples[0]
    assert first.id == "206_modality_gt" and first.question.endswith("(please answer yes/no)")
    assert {k: first.metadata[k] for k in ("image_id", "image_type", "modality", "organ", "question_type", "probe")} == {
        "image_id": "206", "image_type": "x-ray_chest", "modality": "xray", "organ": "chest",
        "question_type": "modality", "probe": "original"}
    assert first.answer_type == "closed" and first.images[0].path == "probmed/00022512_002.png"
    types = {s.metadata["qa_type"]: s.metadata["question_type"] for s in samples}
    assert types["body_part_hallu"] == "organ" and types["entity_hallu"] == "condition"
    assert types["grounding_gt_1"] == "position" and types["abnormality"] == "abnormality"
    assert {s.metadata["modality"] for s in samples} == {"xray", "mri", "ct"}
    assert next(s for s in samples if s.id == "2759_entity_hallu_0").metadata["probe"] == "adversarial"


@pytest.mark.parametrize("image_type, words", [
    ("x-ray_chest", ["xray", "chest"]), ("X-Ray - Chest", ["xray", "chest"]), ("CT Scan_Abdomen", ["ct", "scan", "abdomen"]),
    ("mri brain", ["mri", "brain"]),
])
def test_image_type_words(image_type, words):
    assert image_type_words(image_type) == words


def test_probmed_bad_inputs(data, tmp_path):
    with pytest.raises(UserError, match=r"not a ProbMed folder; expected test.json"):
        load("probmed", tmp_path)
    records = json.loads((data["probmed"] / "test.json").read_text())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "test.json").write_text(json.dumps([records[0], {k: v for k, v in records[1].items() if k != "qa_type"}]))
    with pytest.raises(UserError, match=r"entry 1 lacks qa_type; is this ProbMed's test.json\?"):
        load("probmed", broken)
    odd = [dict(records[0], answer="maybe"), dict(records[1], image="../../etc/passwd")]
    (broken / "test.json").write_text(json.dumps(odd))
    _, samples = load("probmed", broken)
    assert samples[0].error == "answer 'maybe' is not yes or no"
    assert "escapes the data folder" in samples[1].error
    assert (data["probmed"] / "test.json").read_text() == json.dumps(records, indent=1)  # nothing lost


@pytest.mark.parametrize("task", ["hallusionbench", "probmed"])
def test_runs_do_not_depend_on_batch_size(task, data, tmp_path):
    outcomes = []
    for batch in (1, 7):
        # ProbMed's 11 clustered corpus scores are the slow part: 26 questions (cutting one image
        # short, which the scorer must also handle) keep the test quick
        run_dir, record = execute(RunConfig(task=task, model="mock", data_dir=data[task], batch_size=batch,
                                            limit=26 if task == "probmed" else None,
                                            results_dir=tmp_path / f"b{batch}", use_cache=False))
        outcomes.append((record.metrics.model_dump(), sorted((s.id, s.prediction) for s in read_samples(run_dir))))
    assert outcomes[0] == outcomes[1]
    headline = load_task_card(task).headline
    assert record.metrics.overall[headline].value is not None
