"""Adapters never see the gold of the samples they answer: changing every gold answer of the
test split changes no prediction of any baseline (nor of the mock model)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medharness.fixtures.base import write_fixture
from medharness.models.baselines import question_form
from medharness.runner import RunConfig, execute

from .helpers import load_run


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """Path-VQA's HF copy, whose answer_type is derived from the gold answer, twice: as written
    and with every test answer replaced by "yes" (which would make every question closed)."""
    real = write_fixture("pathvqa-hf", tmp_path_factory.mktemp("real"))
    changed = write_fixture("pathvqa-hf", tmp_path_factory.mktemp("changed"))
    (test_file,) = (changed / "data").glob("test-*.parquet")
    table = pq.read_table(test_file)
    column = table.schema.get_field_index("answer")
    pq.write_table(table.set_column(column, "answer", [["yes"] * table.num_rows]), test_file)
    return real, changed


def predictions(data: Path, results: Path, model: str) -> dict[str, str]:
    run_dir, _ = execute(RunConfig(task="pathvqa", model=model, data_dir=data, results_dir=results))
    return {s.id: s.prediction for s in load_run(run_dir)[1]}


@pytest.mark.parametrize("model", ["majority", "question-only", "constant", "mock"])
def test_changing_every_gold_answer_changes_no_prediction(folders, tmp_path, model):
    real, changed = folders
    before = predictions(real, tmp_path / "real", model)
    after = predictions(changed, tmp_path / "changed", model)
    assert before == after
    references = {s.id: s.references for s in load_run(next((tmp_path / "changed").glob("pathvqa__*")))[1]}
    assert all(refs == ["yes"] for refs in references.values())  # the change did reach the runs


@pytest.mark.parametrize("question, form", [
    ("Is there a mass?", "closed"),
    ("does the lesion enhance", "closed"),
    ("Are these cells benign or malignant?", "open"),
    ("What organ is shown?", "open"),
    ("How many nuclei are visible?", "open"),
    ("", "open"),
])
def test_question_form_reads_the_wording(question, form):
    assert question_form(question) == form
