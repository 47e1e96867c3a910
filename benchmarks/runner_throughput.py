"""The runner's own overhead per sample, measured with the `mock` adapter (no model cost):
requests, image hashing, cache lookups and writes, scoring, JSONL writes, aggregation.

    python benchmarks/runner_throughput.py [--n 20000] [--batch-size 64]

Runs twice: a cold run (every request goes to the adapter and into the SQLite cache) and a
warm one (every request served from the cache). Prints samples/s and peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_dataset  # noqa: E402

from medharness.runner import RunConfig, execute  # noqa: E402


def run(n: int, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "data", n)
        for label in ("cold cache", "warm cache"):
            config = RunConfig(task="custom-jsonl", model="mock", data_dir=data,
                               results_dir=Path(tmp) / "results", batch_size=batch_size)
            start, cpu = time.perf_counter(), time.process_time()
            _, record = execute(config)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            # CPU seconds too: on a shared machine wall time includes other processes' turns.
            print(f"runner + mock, {label}: {record.n_samples} samples in {seconds:.1f} s = "
                  f"{record.n_samples / seconds:,.0f} samples/s wall, {record.n_samples / cpu:,.0f} "
                  f"samples per CPU-second ({record.n_cached} cached)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    run(args.n, args.batch_size)
