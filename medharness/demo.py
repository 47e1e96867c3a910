"""`medharness demo`: the whole path offline on generated data: fixtures in the datasets' real
layouts, baselines and a tiny random-weight Dragonfly (with a selection-ratio sweep) on the
three medical VQA tasks, a captioning task and POPE (general images, for the biomedical versus
general comparison), then the leaderboard and both studies."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medharness.console import console, print_summary, progress_bar
from medharness.fixtures.base import write_fixture
from medharness.runner import RunConfig, execute

# task card (its fixture has the same name) -> models evaluated on it; the baselines that learn
# from a train split run where one exists, `constant` where none does
PLAN: dict[str, tuple[str, ...]] = {
    "pathvqa": ("majority", "question-only", "dragonfly-tiny"),
    "vqarad": ("majority", "question-only", "dragonfly-tiny"),
    "slake": ("majority", "question-only", "dragonfly-tiny"),
    "iuxray": ("dragonfly-tiny",),
    "pope": ("constant", "dragonfly-tiny"),
}
# model card -> selection ratios to sweep (None: the model's default)
RATIOS: dict[str, list[Optional[float]]] = {"dragonfly-tiny": [0.25, 0.5, 1.0]}


def run_demo(data: Path, results: Path, out: Path) -> list[Path]:
    from medharness.report.analysis import analyze_modality
    from medharness.report.selection import analyze_selection
    from medharness.report.leaderboard import write_leaderboard

    console.print(f"[bold]medharness demo[/bold]: generated data in {data}, runs in {results}, reports in {out}")
    console.print("[yellow]dragonfly-tiny has RANDOM weights: its numbers show the pipeline, not a model's skill.[/yellow]")
    for task, models in PLAN.items():
        folder = write_fixture(task, data)
        for model in models:
            for ratio in RATIOS.get(model, [None]):
                config = RunConfig(task=task, model=model, data_dir=folder, results_dir=results, selection_ratio=ratio)
                with progress_bar(f"{task} / {model}") as hook:
                    run_dir, record = execute(config, progress=hook)
                print_summary(str(run_dir), record)
    written = [*write_leaderboard(results, out), *analyze_modality(results, out), *analyze_selection(results, out)]
    console.print("\n[bold]Reports[/bold] (open the .html files in a browser):")
    for path in written:
        console.print(f"  {path}")
    return written
