"""`medharness demo`: the whole path offline on generated data: fixtures in the datasets' real
layouts, baselines and a tiny random-weight Dragonfly (with a selection-ratio sweep and an
input-resolution sweep) on the three medical VQA tasks, a captioning task and POPE (general
images, for the biomedical versus general comparison), then the leaderboard, every study and the sample explorer pages.

The tiny Dragonfly answers with random byte tokens, which no metric can read (POPE's F1 has no
value when no answer reads as yes), so the demo uses a copy whose output layer is narrowed to
"yes" and "no": still random weights and meaningless answers, but answers that every metric and
study can score."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from medharness.console import console, print_summary, progress_bar
from medharness.fixtures.base import write_fixture
from medharness.runner import RunConfig, execute
from medharness.schema import ModelCard

DRAGONFLY = "dragonfly-tiny-words"
# task card (its fixture has the same name) -> models evaluated on it; the baselines that learn
# from a train split run where one exists, `constant` where none does
PLAN: dict[str, tuple[str, ...]] = {
    "pathvqa": ("majority", "question-only", DRAGONFLY),
    "vqarad": ("majority", "question-only", DRAGONFLY),
    "slake": ("majority", "question-only", DRAGONFLY),
    "iuxray": (DRAGONFLY,),
    "pope": ("constant", DRAGONFLY),
}
# model -> settings swept: (selection ratio, longest image side); None = the model's default
SWEEPS: dict[str, list[tuple[Optional[float], Optional[int]]]] = {DRAGONFLY: [(0.25, None), (0.5, None), (1.0, None)]}
RESOLUTION_TASK, SIDES = "vqarad", (16, 24)  # the --image-max-side sweep, at the released ratio
YES, NO = "yes", " no"  # single tokens of the tiny tokenizer
VISION_GAIN = 100.0  # the projector's weights scaled up, so that answers depend on the image and crops


def word_model(folder: Path) -> ModelCard:
    """The tiny generation-2 Dragonfly copied to `folder` with its output layer narrowed to
    "yes" and "no": their rows are scaled up 10^4-fold against every other row, and "no"'s row is
    the negative of "yes"'s, so that one of the two always outranks the other tokens; and with
    its projector scaled up (VISION_GAIN), so that the answer depends on the image and on the
    crops selected. Everything else stays random: a random yes/no answerer."""
    import torch
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer

    from medharness.models.dragonfly.tiny import tiny_checkpoint

    shutil.copytree(tiny_checkpoint(2), folder, dirs_exist_ok=True)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    (yes,), (no,) = (tokenizer.encode(w, add_special_tokens=False).ids for w in (YES, NO))
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    head = next(k for k in state if k.endswith("lm_head.weight"))
    scale = torch.full((state[head].shape[0], 1), 1e-3)
    scale[[yes, no]] = 10.0
    rows = state[head] * scale
    rows[no] = -rows[yes]
    state[head] = rows.contiguous()
    for name in [k for k in state if k.startswith("vision_embed_tokens.")]:
        state[name] = state[name] * VISION_GAIN
    save_file(state, str(weights), metadata={"format": "pt"})
    return ModelCard(
        name=DRAGONFLY, adapter="dragonfly", weights=str(folder), random_weights=True, dtype="float32", device="cpu",
        batch_size=4, generation={"max_new_tokens": 1}, options={"preprocess_workers": 2},
        description="RANDOM WEIGHTS. The tiny generation-2 Dragonfly with its output narrowed to yes / no (demo only): "
                    "its answers mean nothing.")


def run_demo(data: Path, results: Path, out: Path) -> list[Path]:
    from medharness.report.analysis import analyze_modality
    from medharness.report.cost import analyze_cost
    from medharness.report.explorer import write_explorers
    from medharness.report.hallucination import analyze_hallucination
    from medharness.report.leaderboard import write_leaderboard
    from medharness.report.selection import analyze_selection

    console.print(f"[bold]medharness demo[/bold]: generated data in {data}, runs in {results}, reports in {out}")
    console.print(f"[yellow]{DRAGONFLY} has RANDOM weights: its numbers show the pipeline, not a model's skill.[/yellow]")
    cards = {DRAGONFLY: word_model(Path(data) / DRAGONFLY)}
    for task, models in PLAN.items():
        folder = write_fixture(task, data)
        for model in models:
            settings = list(SWEEPS.get(model, [(None, None)]))
            if model in SWEEPS and task == RESOLUTION_TASK:
                settings += [(0.5, side) for side in SIDES]
            for ratio, side in settings:
                config = RunConfig(task=task, model=model, model_card=cards.get(model), data_dir=folder,
                                   results_dir=results, selection_ratio=ratio, image_max_side=side)
                with progress_bar(f"{task} / {model}") as hook:
                    run_dir, record = execute(config, progress=hook)
                print_summary(str(run_dir), record)
    written = [*write_leaderboard(results, out), *analyze_modality(results, out), *analyze_selection(results, out),
               *analyze_hallucination(results, out), *analyze_cost(results, out),
               *write_explorers(results, out)]
    console.print("\n[bold]Reports[/bold] (open the .html files in a browser):")
    for path in written:
        console.print(f"  {path}")
    return written
