"""A large synthetic dataset in the `jsonl` task format for the harness benchmarks."""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

MODALITIES = ("ct", "mri", "xray", "pathology")


def write_dataset(folder: Path, n: int, n_images: int = 64, seed: int = 0) -> Path:
    """n test samples over n_images small PNGs (plus a 1,000-sample train split)."""
    rng = random.Random(seed)
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        Image.new("RGB", (64, 64), (i * 3 % 256, 100, 50)).save(folder / "imgs" / f"{i}.png")
    for split, count in (("test", n), ("train", 1000)):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for k in range(count):
                closed = k % 2 == 0
                fh.write(json.dumps({
                    "id": f"{split}-{k}", "image": f"imgs/{k % n_images}.png",
                    "question": f"is finding {k} present?" if closed else f"what is structure {k}?",
                    "answer": rng.choice(["yes", "no"]) if closed else rng.choice(["liver", "lung", "heart"]),
                    "answer_type": "closed" if closed else "open",
                    "metadata": {"modality": MODALITIES[k % 4], "organ": ["chest", "abdomen", "head"][k % 3]},
                }) + "\n")
    return folder
