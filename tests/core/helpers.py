"""Shared helpers for the core tests: a fixture dataset, card files, running the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from medharness.fixtures.base import write_fixture
from medharness.results import read_samples

REPO = Path(__file__).resolve().parents[2]


def jsonl_fixture(root: Path) -> Path:
    return write_fixture("jsonl-vqa", root)


def model_card(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, **fields}), encoding="utf-8")
    return path


def cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    # The checkout first, then the caller's path (so a test run against other installed versions
    # of typer/click, put on PYTHONPATH, reaches the subprocess too).
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "medharness", *args], capture_output=True, text=True,
        timeout=timeout, env=full_env, cwd=REPO,
    )


def only_error_line(proc: subprocess.CompletedProcess) -> str:
    """The one stderr line of a user mistake: exit code 2, no traceback, nothing else printed."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if (p / "run.json").exists())


def load_run(run_dir: Path) -> tuple[dict, list]:
    record = json.loads((run_dir / "run.json").read_text())
    return record, read_samples(run_dir)


def comparable(samples: list) -> list[dict]:
    """Per-sample content that must not depend on batching, order or caching."""
    keep = ("id", "prediction", "scores", "error", "references", "metadata")
    return sorted(({k: getattr(s, k) for k in keep} for s in samples), key=lambda d: d["id"])
