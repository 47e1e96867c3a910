"""One writer per run folder, self-repair of damaged folders, cache faults and full disks."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medharness import results as files
from medharness import runner
from medharness.errors import UserError
from medharness.runner import RunConfig, execute

from .helpers import REPO, jsonl_fixture, load_run, model_card, run_dirs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> dict:
    """Metrics of an uninterrupted run of the mock model, to compare repaired runs with."""
    _, record = execute(RunConfig(task="custom-jsonl", model="mock", data_dir=data,
                                  results_dir=tmp_path_factory.mktemp("reference")))
    return without_cache_counts(record.metrics)


def without_cache_counts(metrics) -> dict:
    """The metrics as run.json holds them, less the cached count (a rerun is served from cache)."""
    plain = metrics if isinstance(metrics, dict) else json.loads(metrics.model_dump_json())
    plain["counts"].pop("cached")
    return plain


def run(data: Path, results: Path, model: str = "mock", **kw):
    return execute(RunConfig(task="custom-jsonl", model=model, data_dir=data, results_dir=results, **kw))


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "medharness", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def assert_one_writer_won(procs: list[subprocess.Popen], results: Path, reference: dict) -> None:
    errors = [" ".join(p.communicate(timeout=120)[1].split()) for p in procs]
    outcomes = sorted(zip([p.returncode for p in procs], errors))
    (ok, _), (refused, message) = outcomes
    assert ok == 0 and refused == 2, outcomes
    assert "is already writing this run; wait for it to finish" in message and "Traceback" not in message
    assert "pid " in message and socket.gethostname() in message
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    assert record["status"] == "complete"
    assert lines(run_dir / "samples.jsonl") == len({s.id for s in samples}) == 40
    assert without_cache_counts(record["metrics"]) == reference


def test_same_command_twice_in_parallel_gives_one_run(data, tmp_path, reference):
    card = model_card(tmp_path / "slow.yaml", adapter="mock", batch_size=1, options={"delay": 0.06})
    results = tmp_path / "results"
    args = ["run", "--task", "custom-jsonl", "--model", str(card), "--data-dir", str(data),
            "--results", str(results), "--quiet"]
    assert_one_writer_won([start(args), start(args)], results, reference)


def test_two_resumes_at_once_never_write_twice(data, tmp_path, reference):
    card = model_card(tmp_path / "slow.yaml", adapter="mock", batch_size=1, options={"delay": 0.06})
    results = tmp_path / "results"
    args = ["run", "--task", "custom-jsonl", "--model", str(card), "--data-dir", str(data),
            "--results", str(results), "--quiet", "--no-cache"]
    first = start(args)
    deadline = time.time() + 60
    while time.time() < deadline and sum(lines(p) for p in results.glob("*/samples.jsonl")) < 5:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert_one_writer_won([start(args), start(args)], results, reference)


def test_a_held_run_is_refused_with_the_holder(data, tmp_path):
    results = tmp_path / "results"
    run_dir, _ = run(data, results, limit=4)
    path = run_dir / "run.json"
    path.write_text(path.read_text().replace('"status": "complete"', '"status": "running"'))
    with files.lock_writer(run_dir):
        with pytest.raises(UserError, match=rf"pid {os.getpid()} on \S+ \(since [0-9T:+-]+\) is already writing this run"):
            run(data, results, limit=4)
    assert run(data, results, limit=4)[1].status == "complete"  # released: the run resumes


def test_damaged_folder_repairs_itself(data, tmp_path, reference):
    """Lines repeated by two writers (before runs were locked), a line garbled by interleaved
    writes, a cut last line and temp files of killed atomic writes."""
    results = tmp_path / "results"
    run_dir, _ = run(data, results)
    samples_path, record_path = run_dir / "samples.jsonl", run_dir / "run.json"
    record_path.write_text(record_path.read_text().replace('"status": "complete"', '"status": "running"'))
    raw = samples_path.read_bytes().splitlines(keepends=True)
    damaged = raw[:30] + raw[:12] + [raw[12][:40] + raw[13]] + raw[30:] + [raw[14][:25]]
    samples_path.write_bytes(b"".join(damaged))
    stale = [run_dir / ".samples.jsonl.k1ll3d.tmp", run_dir / ".run.json.x7y8z9.tmp"]
    for path in stale:
        path.write_text("half")
    _, record = run(data, results)
    assert record.status == "complete" and record.n_samples == 38 and record.n_skipped == 2  # the fixture's two bad images
    assert lines(samples_path) == 40
    assert "samples.jsonl: repaired: dropped 12 repeated and 1 unreadable lines" in " ".join(record.warnings)
    assert without_cache_counts(record.metrics) == reference
    assert not any(path.exists() for path in stale)


def test_corrupt_cache_file_is_moved_aside_and_the_run_goes_on(data, tmp_path, reference):
    results = tmp_path / "results"
    cache = results / files.CACHE_FILE
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"this is not a database" * 200)
    _, record = run(data, results)
    assert record.status == "complete"
    (warning,) = [w for w in record.warnings if "response cache" in w]
    assert "is unreadable" in warning and "moved it aside" in warning
    assert list(cache.parent.glob("responses.sqlite.corrupt-*"))
    assert without_cache_counts(record.metrics) == reference
    assert run(data, results)[1].n_cached == 38  # the new cache works


def test_corrupt_cache_row_is_skipped_and_recomputed(data, tmp_path, reference):
    results = tmp_path / "results"
    run(data, results)
    conn = sqlite3.connect(results / files.CACHE_FILE)
    conn.execute("UPDATE responses SET prediction = '{\"sample_id\": 5' WHERE rowid = 1")
    conn.commit()
    conn.close()
    _, record = run(data, results)
    assert 30 < record.n_cached < 38  # identical requests share the unreadable row
    assert any("skipped unreadable rows" in w for w in record.warnings)
    assert without_cache_counts(record.metrics) == reference


class FullDisk:
    """A file whose writes fail with ENOSPC after `allowed` successful ones."""

    def __init__(self, fh, allowed: int) -> None:
        self.fh, self.allowed = fh, allowed

    def write(self, text: str) -> int:
        if self.allowed <= 0:
            self.fh.write(text[: len(text) // 2])  # a partial line, as a real full disk leaves
            self.fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.allowed -= 1
        return self.fh.write(text)

    def __getattr__(self, name: str):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def test_disk_full_writing_samples_is_one_line_and_resumes(data, tmp_path, monkeypatch, reference):
    results = tmp_path / "results"
    monkeypatch.setattr(runner, "open", lambda *a, **k: FullDisk(open(*a, **k), allowed=3), raising=False)
    with pytest.raises(UserError) as failure:
        run(data, results, batch_size=4)
    (run_dir,) = run_dirs(results)
    assert str(failure.value) == (f"disk full while writing {run_dir / 'samples.jsonl'}; "
                                  "free space and run the same command again")
    monkeypatch.undo()
    _, record = run(data, results, batch_size=4)
    assert record.status == "complete" and lines(run_dir / "samples.jsonl") == 40
    assert without_cache_counts(record.metrics) == reference


def test_disk_full_in_the_cache_is_one_line_and_resumes(data, tmp_path, monkeypatch, reference):
    results = tmp_path / "results"
    connect = sqlite3.connect

    class Connection:
        def __init__(self, *a, **k) -> None:
            self.conn = connect(*a, **k)

        def executemany(self, *a):
            raise sqlite3.OperationalError("database or disk is full")

        def __getattr__(self, name: str):
            return getattr(self.conn, name)

    monkeypatch.setattr(sqlite3, "connect", Connection)
    with pytest.raises(UserError, match=r"^disk full while writing \S+responses\.sqlite; free space and run the same command again$"):
        run(data, results)
    monkeypatch.undo()
    _, record = run(data, results)
    assert record.status == "complete"
    assert without_cache_counts(record.metrics) == reference


def test_cached_rows_keep_their_original_seconds_and_are_marked(data, tmp_path):
    card = model_card(tmp_path / "timed.yaml", adapter="mock", options={"delay": 0.001})
    results = tmp_path / "results"
    first_dir, _ = run(data, results, model=str(card), limit=6)
    second_dir, _ = run(data, results, model=str(card), limit=6)
    first, second = load_run(first_dir)[1], load_run(second_dir)[1]
    assert not any(s.cached for s in first)
    assert all(s.cached for s in second if not s.error)
    assert [s.seconds for s in second] == [s.seconds for s in first]
