"""A run killed with SIGKILL resumes with every sample scored exactly once; two processes
writing to one results folder at once leave a consistent cache."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import REPO, cli, jsonl_fixture, load_run, model_card, run_dirs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "medharness", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def lines(results: Path) -> int:
    files = list(results.glob("*/samples.jsonl"))
    return sum(f.read_bytes().count(b"\n") for f in files)


def test_sigkill_mid_run_then_resume(data, tmp_path):
    card = model_card(tmp_path / "slow-mock.yaml", adapter="mock", batch_size=1, options={"delay": 0.05})
    results = tmp_path / "results"
    args = ["run", "--task", "custom-jsonl", "--model", str(card), "--data-dir", str(data),
            "--results", str(results), "--quiet"]
    killed_at = []
    for threshold in (6, 17):  # kill twice, at different points
        proc = start(args)
        deadline = time.time() + 60
        while time.time() < deadline and (not results.exists() or lines(results) < threshold):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(lines(results))
    assert 6 <= killed_at[0] < killed_at[1] < 40, killed_at
    (run_dir,) = run_dirs(results)
    before = (run_dir / "samples.jsonl").read_bytes()
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    (same_dir,) = run_dirs(results)  # resumed in place, no second run
    assert same_dir == run_dir
    record, samples = load_run(run_dir)
    ids = [s.id for s in samples]
    assert record["status"] == "complete"
    assert len(ids) == len(set(ids)) == 40
    # lines finished before the kills were kept, not recomputed
    assert (run_dir / "samples.jsonl").read_bytes().startswith(before[: before.rfind(b"\n") + 1])


def test_truncated_last_line_is_repaired(data, tmp_path):
    results = tmp_path / "results"
    card = model_card(tmp_path / "m.yaml", adapter="mock", batch_size=4)
    args = ["run", "--task", "custom-jsonl", "--model", str(card), "--data-dir", str(data), "--results", str(results), "--quiet"]
    assert cli(*args, "--limit", "8").returncode == 0
    (run_dir,) = run_dirs(results)
    # Simulate a kill in the middle of writing: mark the run unfinished and cut a line in half.
    record_path = run_dir / "run.json"
    record_path.write_text(record_path.read_text().replace('"status": "complete"', '"status": "running"'))
    raw = (run_dir / "samples.jsonl").read_bytes()
    (run_dir / "samples.jsonl").write_bytes(raw[: len(raw) - 30])
    assert cli(*args, "--limit", "8").returncode == 0
    record, samples = load_run(run_dir)
    assert record["status"] == "complete" and sorted(s.id for s in samples) == sorted({s.id for s in samples})
    assert len(samples) == 8


def test_two_processes_share_one_results_folder(data, tmp_path):
    results = tmp_path / "results"
    cards = [model_card(tmp_path / f"mock{i}.yaml", adapter="mock", batch_size=1,
                        options={"delay": 0.002, "vocabulary": [f"a{i}", f"b{i}"]}) for i in range(2)]
    procs = [start(["run", "--task", "custom-jsonl", "--model", str(c), "--data-dir", str(data),
                    "--results", str(results), "--quiet", "--split", "train"]) for c in cards]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    conn = sqlite3.connect(results / ".cache" / "responses.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the train split repeats 12 (question, image) pairs; identical requests share one entry
    assert conn.execute("SELECT count(*) FROM responses").fetchone()[0] == 2 * 12
    for run_dir in run_dirs(results):
        record, samples = load_run(run_dir)
        assert record["status"] == "complete" and len(samples) == 60
    # a third run of either card is served entirely from the shared cache
    again = cli("run", "--task", "custom-jsonl", "--model", str(cards[0]), "--data-dir", str(data),
                "--results", str(results), "--quiet", "--split", "train")
    assert "60 from cache" in again.stderr.replace("\n", " ")
