"""torchrun with 2 ranks (gloo, CPU) gives the same run as one process; a killed rank resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.helpers import REPO, cli, jsonl_fixture, load_run, model_card, run_dirs

pytest.importorskip("torch.distributed.run")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def torchrun(args: list[str], nproc: int = 2) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "medharness", *args]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out + err
    return err


def samples_bytes(results: Path) -> bytes:
    (run_dir,) = run_dirs(results)
    return (run_dir / "samples.jsonl").read_bytes()


def metrics(results: Path) -> dict:
    (run_dir,) = run_dirs(results)
    return load_run(run_dir)[0]["metrics"]


def run_args(card: str, data: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--task", "custom-jsonl", "--model", card, "--data-dir", str(data),
            "--results", str(results), "--quiet", *extra]


def test_two_ranks_equal_one_process(data, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert cli(*run_args("mock", data, single, "--batch-size", "3")).returncode == 0
    finish(torchrun(run_args("mock", data, multi, "--batch-size", "3")))
    assert samples_bytes(multi) == samples_bytes(single)
    assert metrics(multi) == metrics(single)
    (run_dir,) = run_dirs(multi)
    assert not list(run_dir.glob("samples.rank*"))  # parts merged away


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def part_lines(results: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in results.glob("*/samples.rank*.jsonl"))


def test_killed_rank_resumes_per_shard(data, tmp_path):
    card = str(model_card(tmp_path / "slow.yaml", adapter="mock", batch_size=1, options={"delay": 0.1}))
    results, single = tmp_path / "multi", tmp_path / "single"
    proc = torchrun(run_args(card, data, results))
    deadline = time.time() + 90
    while time.time() < deadline and part_lines(results) < 8:
        time.sleep(0.05)
    victims = children(proc.pid)
    assert len(victims) == 2, victims
    os.kill(victims[1], signal.SIGKILL)  # one rank dies; torchrun then stops the other
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    (run_dir,) = run_dirs(results)
    done_before = part_lines(results)
    assert 8 <= done_before < 40
    finish(torchrun(run_args(card, data, results)))
    record, samples = load_run(run_dir)
    assert record["status"] == "complete"
    assert len(samples) == len({s.id for s in samples}) == 40
    assert cli(*run_args(card, data, single)).returncode == 0
    assert metrics(results) == metrics(single)


def test_two_ranks_equal_one_process_with_dragonfly_tiny(data, tmp_path):
    """A real model: the tiny random Dragonfly (fp32, CPU); each rank gets different batches."""
    from tests.core.helpers import comparable

    cache = {"MEDHARNESS_CACHE": str(tmp_path / "cache")}
    single, multi = tmp_path / "single", tmp_path / "multi"
    args = ("--limit", "10", "--batch-size", "3", "--max-new-tokens", "4")
    proc = cli(*run_args("dragonfly-tiny", data, single, *args), env=cache, timeout=300)
    assert proc.returncode == 0, proc.stderr
    os.environ.update(cache)
    try:
        finish(torchrun(run_args("dragonfly-tiny", data, multi, *args)), timeout=300)
    finally:
        del os.environ["MEDHARNESS_CACHE"]
    (one,), (two,) = run_dirs(single), run_dirs(multi)
    assert comparable(load_run(two)[1]) == comparable(load_run(one)[1])
    assert [s.id for s in load_run(two)[1]] == [s.id for s in load_run(one)[1]]
    assert metrics(multi) == metrics(single)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(args: list[str]) -> list[subprocess.Popen]:
    """Two torchrun launches acting as two nodes of one rank each (c10d rendezvous on
    127.0.0.1): each rank then writes its own cache file, as on a real multi-node cluster."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    endpoint = f"127.0.0.1:{free_port()}"
    return [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
             f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}",
             "--rdzv_id=medharness-test", "--max_restarts=0", "-m", "medharness", *args],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        for node in (0, 1)
    ]


def test_two_nodes_merge_their_caches_into_the_main_cache(data, tmp_path):
    import sqlite3

    results, single = tmp_path / "multi", tmp_path / "single"
    args = run_args("mock", data, results, "--batch-size", "3")
    for proc in two_nodes(args):
        finish(proc)
    cache_dir = results / ".cache"
    assert sorted(p.name for p in cache_dir.iterdir() if "rank" in p.name) == []  # parts merged away
    conn = sqlite3.connect(cache_dir / "responses.sqlite")
    merged = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    conn.close()
    assert merged == 12  # every distinct request of the 38 usable samples (see the fixture)
    assert cli(*run_args("mock", data, single, "--batch-size", "3")).returncode == 0
    assert metrics(results) == metrics(single)
    (run_dir,) = run_dirs(results)
    for proc in two_nodes(run_args("mock", data, results, "--batch-size", "3", "--no-resume")):
        finish(proc)
    rerun = [d for d in run_dirs(results) if d != run_dir]
    (rerun_dir,) = rerun
    assert load_run(rerun_dir)[0]["n_cached"] == 38  # a rerun is all cache hits
