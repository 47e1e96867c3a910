"""End-to-end runner behaviour on the jsonl fixture with the mock and baseline adapters."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from medharness.runner import RunConfig, execute

from .helpers import comparable, jsonl_fixture, load_run


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def run(data: Path, results: Path, model: str = "mock", **kw):
    return execute(RunConfig(task="custom-jsonl", model=model, data_dir=data, results_dir=results, **kw))


def test_run_writes_record_samples_and_data_errors(data, tmp_path):
    run_dir, record = run(data, tmp_path)
    assert record.status == "complete"
    assert record.n_samples == 38 and record.n_errors == 0  # data errors are in no n
    assert record.n_skipped == 2
    assert record.skipped == {"missing image": 1, "path outside the data folder": 1}
    stored, samples = load_run(run_dir)
    skipped = {s.id: s for s in samples if s.outcome == "data_error"}
    assert sorted(skipped) == ["test-5", "test-6"]
    assert "not found" in skipped["test-5"].error and "escapes the data folder" in skipped["test-6"].error
    assert all(s.scores == {} and s.skip_reason for s in skipped.values())
    assert all(s.outcome == "scored" for s in samples if s.id not in skipped)
    spec = stored["spec"]
    for key in ("task_version", "data_fingerprint", "model_card", "model_fingerprint", "generation", "seed"):
        assert key in spec
    assert stored["git_commit"] and stored["packages"]["medharness"]
    assert stored["started"] and stored["finished"]
    overall = stored["metrics"]["overall"]["exact_match"]
    assert overall["n"] == 38 and overall["ci"][0] <= overall["value"] <= overall["ci"][1]
    groups = stored["metrics"]["groups"]
    assert set(groups) == {"modality", "answer_type", "organ"}
    assert sum(g["exact_match"]["n"] for g in groups["modality"].values()) == 38


def test_second_run_is_served_from_cache(data, tmp_path):
    _, first = run(data, tmp_path)
    run_dir, second = run(data, tmp_path)
    assert second.n_cached == 38  # every sample but the two errors
    assert second.metrics == first.metrics.model_copy(update={"counts": second.metrics.counts})


@pytest.mark.parametrize("model", ["mock", "majority", "question-only"])
def test_batch_size_and_order_do_not_change_results(data, tmp_path, model):
    shuffled = tmp_path / "shuffled"
    shutil.copytree(data, shuffled)
    lines = (shuffled / "test.jsonl").read_text().splitlines()
    random.Random(3).shuffle(lines)
    (shuffled / "test.jsonl").write_text("\n".join(lines) + "\n")
    outcomes = []
    for i, (folder, size) in enumerate([(data, 1), (data, 2), (data, 7), (shuffled, 3)]):
        run_dir, record = run(folder, tmp_path / f"r{i}", model=model, batch_size=size)
        metrics = record.metrics.model_dump()
        metrics["counts"].pop("cached")  # accounting: identical requests in one batch all miss
        outcomes.append((metrics, comparable(load_run(run_dir)[1])))
    # the shuffled copy's images live in another folder: compare everything but error texts
    for metrics, samples in outcomes[1:]:
        assert metrics == outcomes[0][0]
        strip = lambda rows: [{**r, "error": bool(r["error"])} for r in rows]  # noqa: E731
        assert strip(samples) == strip(outcomes[0][1])


def test_baselines_learn_from_train(data, tmp_path):
    _, majority = run(data, tmp_path, model="majority")
    _, qonly = run(data, tmp_path, model="question-only")
    _, mock = run(data, tmp_path, model="mock")
    score = {name: r.metrics.overall["exact_match"].value for name, r in
             (("majority", majority), ("question-only", qonly), ("mock", mock))}
    assert score["majority"] > score["mock"] and score["question-only"] > score["mock"], score


def test_cache_file_is_sqlite_wal(data, tmp_path):
    run(data, tmp_path)
    conn = sqlite3.connect(tmp_path / ".cache" / "responses.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM responses").fetchone()[0] == 12  # distinct (question, image) pairs


def test_limit_and_split(data, tmp_path):
    _, record = run(data, tmp_path, limit=5)
    assert record.n_samples == 5
    _, train = run(data, tmp_path, split="train")
    assert train.n_samples == 60 and train.spec.split == "train"


def test_malformed_data_line_is_a_data_error_of_that_record(data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    with open(broken / "test.jsonl", "a") as fh:
        fh.write('{"id": "x", "question": \n')
    run_dir, record = run(broken, tmp_path / "r")
    assert record.n_samples == 38 and record.skipped["malformed record"] == 1
    bad = {s.id: s for s in load_run(run_dir)[1]}["test.jsonl:41"]
    assert bad.outcome == "data_error" and bad.error.startswith("test.jsonl:41: not valid JSON")


def test_adapter_prefetches_the_next_batch_before_generating(data, tmp_path):
    from medharness.models.mock import MockAdapter
    from medharness.registry import ADAPTERS

    calls: list[tuple[str, list[str]]] = []

    class Recording(MockAdapter):
        def prefetch(self, requests):
            calls.append(("prefetch", [r.sample_id for r in requests]))

        def generate(self, requests):
            calls.append(("generate", [r.sample_id for r in requests]))
            return super().generate(requests)

    if "recording-mock" not in ADAPTERS:
        ADAPTERS.register("recording-mock", Recording)
    card = tmp_path / "rec.yaml"
    card.write_text("adapter: recording-mock\n")
    run(data, tmp_path / "r", model=str(card), batch_size=10, limit=30, use_cache=False)
    kinds = [k for k, _ in calls]
    assert kinds == ["prefetch", "generate", "prefetch", "generate", "generate"]
    # each prefetch names exactly the batch generated next
    assert calls[0][1] == calls[3][1] and calls[2][1] == calls[4][1]


def test_constant_baseline_answers_first_option_or_yes():
    from medharness.models.baselines import ConstantBaseline
    from medharness.schema import ModelCard, Request

    adapter = ConstantBaseline(ModelCard(name="constant", adapter="constant"))
    out = adapter.generate([Request(sample_id="a", prompt="q", choices=["x", "y"]), Request(sample_id="b", prompt="q")])
    assert [p.text for p in out] == ["A", "yes"]
    picky = ConstantBaseline(ModelCard(name="c", adapter="constant", options={"choice": 1, "text": "no"}))
    assert [p.text for p in picky.generate([Request(sample_id="a", prompt="q", choices=["x", "y"]), Request(sample_id="b", prompt="q")])] == ["B", "no"]


def test_modality_outside_the_vocabulary_is_refused(data, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    text = (bad / "test.jsonl").read_text().replace('"modality": "ct"', '"modality": "CT scan"', 1)
    (bad / "test.jsonl").write_text(text)
    run_dir, record = run(bad, tmp_path / "r")
    first = {s.id: s for s in load_run(run_dir)[1]}["test-0"]
    assert first.skip_reason == "malformed record"
    assert first.error.startswith("test.jsonl:1: ") and "modality 'CT scan' is not one of ct, mri" in first.error


@pytest.mark.parametrize(("flags", "cached"), [({"needs_images": False}, 38), ({"use_cache": False}, 0)])
def test_use_cache_alone_turns_the_cache_off(data, tmp_path, flags, cached):
    """A text-only adapter (needs_images False) is still cached; only use_cache turns it off."""
    from medharness.models.mock import MockAdapter
    from medharness.registry import ADAPTERS

    name = "mock-" + "-".join(flags)
    if name not in ADAPTERS:
        ADAPTERS.register(name, type(name, (MockAdapter,), dict(flags)))
    card = tmp_path / "flags.yaml"
    card.write_text(f"adapter: {name}\n")
    run(data, tmp_path / "r", model=str(card))
    _, second = run(data, tmp_path / "r", model=str(card))
    assert second.n_cached == cached
