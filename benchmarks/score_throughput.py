"""How fast `medharness score` scores another tool's predictions: 100,000 generated samples.

    python benchmarks/score_throughput.py [--n 100000]

Prints samples/s for the whole command (loading, scoring, grouped bootstrap CIs, writing) and
the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_dataset  # noqa: E402

from medharness.cli import main  # noqa: E402


def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "data", n)
        preds = Path(tmp) / "preds.jsonl"
        with open(preds, "w") as fh:
            for k in range(n):
                fh.write(json.dumps({"id": f"test-{k}", "prediction": ["yes", "no", "liver"][k % 3]}) + "\n")
        start, cpu = time.perf_counter(), time.process_time()
        try:
            main(["score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(data),
                  "--results", str(Path(tmp) / "results")])
        except SystemExit as exc:
            if exc.code:
                raise
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"score: {n} samples in {seconds:.1f} s = {n / seconds:,.0f} samples/s wall, "
          f"{n / cpu:,.0f} per CPU-second; peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    run(parser.parse_args().n)
