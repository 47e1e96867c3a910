"""A factory for synthetic but schema-valid run folders (RunRecord + SampleResult, dumped with
pydantic exactly as the runner writes them), so report tests never run a model."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest

from medharness.schema import GenerationSettings, MetricValue, Metrics, RunRecord, RunSpec, SampleResult

DEFINITIONS = {
    "closed_accuracy": "normalised exact match on closed questions",
    "open_token_f1": "SQuAD v1.1 token F1 on open questions",
}
_counter = itertools.count()


def mv(value: Optional[float], n: int = 40, half: float = 0.05, small: bool = False, note: Optional[str] = None) -> MetricValue:
    ci = None if value is None else (max(0.0, value - half), min(1.0, value + half))
    return MetricValue(value=value, n=n, ci=ci, small=small, note=note)


def sample(i: int, modality: str = "ct", source: str = "dataset", prediction: str = "yes", **extra: Any) -> SampleResult:
    return SampleResult(
        id=str(i), prompt=f"question {i}?", prediction=prediction, references=["yes"], answer_type="closed",
        metadata={"modality": modality, "modality_source": source, "organ": "head"},
        scores={"closed_accuracy": 1.0 if prediction == "yes" else 0.0, "open_token_f1": None},
        visual_tokens=extra.pop("visual_tokens", 1000), seconds=extra.pop("seconds", 0.5), **extra,
    )


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


class RunFactory:
    def __init__(self, results: Path) -> None:
        self.results = results

    def __call__(
        self,
        task: str = "vqarad",
        model: str = "mock",
        overall: Optional[dict[str, MetricValue]] = None,
        groups: Optional[dict[str, dict[str, dict[str, MetricValue]]]] = None,
        samples: Optional[list[SampleResult]] = None,
        ratio: Optional[float] = None,
        status: str = "complete",
        finished: Optional[str] = "2025-01-01T10:00:00+00:00",
        task_version: str = "1",
        split: str = "test",
        random_weights: bool = False,
        definitions: Optional[dict[str, str]] = None,
        headline: Optional[str] = "closed_accuracy",
        limit: Optional[int] = None,
        run_id: Optional[str] = None,
        warnings: Optional[list[str]] = None,
        max_new_tokens: int = 64,
        task_format: str = "vqa",
        data_source: str = "fixture",
        generation: Optional[dict[str, Any]] = None,
    ) -> Path:
        samples = samples if samples is not None else [sample(i) for i in range(4)]
        spec = RunSpec(
            task=task, task_version=task_version, task_format=task_format, split=split, data_source=data_source,
            data_fingerprint="f" * 64, model=model,
            model_card={"name": model, "adapter": "mock", "random_weights": random_weights},
            model_fingerprint="m" * 16, generation=GenerationSettings(selection_ratio=ratio, max_new_tokens=max_new_tokens, **(generation or {})), limit=limit,
            metric_definitions=definitions if definitions is not None else dict(DEFINITIONS),
            options={"headline": headline, "group_by": ["modality"]},
        )
        record = RunRecord(
            run_id=run_id or f"{task}__{safe_name(model)}__{next(_counter):04d}", spec_hash="h" * 64, spec=spec, status=status,
            started="2025-01-01T09:00:00+00:00", finished=finished if status == "complete" else None,
            n_samples=len(samples),
            metrics=Metrics(
                overall=overall if overall is not None else {"closed_accuracy": mv(0.6), "open_token_f1": mv(0.3)},
                groups=groups or {}, counts={"samples": len(samples)},
            ),
            warnings=warnings or [],
        )
        folder = self.results / record.run_id
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(record.model_dump_json(indent=2), encoding="utf-8")
        (folder / "samples.jsonl").write_text("".join(s.model_dump_json() + "\n" for s in samples), encoding="utf-8")
        return folder


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    return folder


@pytest.fixture
def make_run(results: Path) -> RunFactory:
    return RunFactory(results)


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def chromium_binary() -> Optional[str]:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


@pytest.fixture
def chromium(tmp_path: Path):
    """Run headless Chromium on a local file: chromium(page, *flags) -> stdout."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium not installed: apt-get install chromium")
    profile = itertools.count()

    def render(page: Path, *flags: str) -> str:
        user_dir = tmp_path / f"chromium-profile-{next(profile)}"
        done = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", *flags, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=90,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return render


def study_cli_works_and_refuses_a_missing_task(study: str, results: Path, out: Path, missing: str, known: str) -> None:
    """`medharness analyze STUDY` writes its page; a --task without runs is one line, exit 2."""
    from tests.core.helpers import cli

    done = cli("analyze", study, "--results", str(results), "--out", str(out))
    assert done.returncode == 0 and (out / f"{study}.html").is_file(), done.stderr
    refused = cli("analyze", study, "--results", str(results), "--task", missing)
    assert refused.returncode == 2
    assert (refused.stdout + refused.stderr).strip().splitlines() == [
        f"error: no complete runs of task(s) {missing} in the results folder; tasks with runs: {known}"]


def page_renders(chromium, page: Path) -> int:
    """Render `page` in headless Chromium: its script finished without error and every image
    loaded; returns the number of images."""
    dom = chromium(page, "--virtual-time-budget=10000", "--dump-dom")
    for name, expected in (("data-report-ready", "1"), ("data-script-errors", "0")):
        assert re.search(rf'<html[^>]*\s{name}="{expected}"', dom), name
    images = len(re.findall(r"<img\b", dom))
    assert re.search(rf'<html[^>]*\sdata-images-loaded="{images}"', dom)
    return images
