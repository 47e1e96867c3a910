"""How large the sample explorer gets and how fast it opens: a Path-VQA-sized test set (6,719
questions over 858 images) scored for three systems, then `medharness view`.

    python benchmarks/view_page.py [--n 6719] [--images 858] [--systems 3]

Prints the seconds `view` took, the page's size (and the sidecar folder's, if the images went
there), and Chromium's time from navigation to the first rendered page of samples (the page's
data-ready-ms) plus the wall time of the whole headless Chromium process.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_dataset  # noqa: E402

from medharness.cli import main  # noqa: E402
from medharness.report.explorer import write_explorers  # noqa: E402


def textured_images(folder: Path, count: int, seed: int = 0) -> None:
    """512 px images with blobs and noise, so thumbnails cost what real slides cost."""
    rng = random.Random(seed)
    for i in range(count):
        picture = Image.effect_noise((512, 512), 40).convert("RGB")
        draw = ImageDraw.Draw(picture)
        for _ in range(30):
            x, y, r = rng.randrange(512), rng.randrange(512), rng.randrange(10, 60)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(120), rng.randrange(256)))
        picture.filter(ImageFilter.GaussianBlur(1)).save(folder / f"{i}.png")


def score_systems(tmp: Path, n: int, images: int, systems: int) -> Path:
    data = write_dataset(tmp / "data", n, n_images=images)
    textured_images(data / "imgs", images)
    results = tmp / "results"
    answers = ["yes", "no", "liver", "lung", "heart", "<b>bold?</b>"]
    for s in range(systems):
        rng = random.Random(s)
        preds = tmp / f"system{s}.jsonl"
        with open(preds, "w") as fh:
            for k in range(n):
                fh.write(json.dumps({"id": f"test-{k}", "prediction": rng.choice(answers)}) + "\n")
        try:
            main(["score", "--task", "custom-jsonl", "--predictions", str(preds), "--data-dir", str(data), "--results", str(results)])
        except SystemExit as done:
            assert done.code == 0, done.code
    return results


def chromium_load(page: Path) -> tuple[float, float]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        return float("nan"), float("nan")
    with tempfile.TemporaryDirectory() as profile:
        started = time.perf_counter()
        dom = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
             "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=300,
        ).stdout
        wall = time.perf_counter() - started
    ready = re.search(r'data-ready-ms="(\d+)"', dom)
    return (int(ready.group(1)) / 1000 if ready else float("nan")), wall


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def run(n: int, images: int, systems: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = score_systems(Path(tmp), n, images, systems)
        started = time.perf_counter()
        [page] = write_explorers(results, Path(tmp) / "reports")
        seconds = time.perf_counter() - started
        sidecar = page.with_name(page.stem + ".images")
        ready, wall = chromium_load(page)
        print(f"{n} samples x {systems} systems, {images} images: view {seconds:.1f} s; page {page.stat().st_size / 1e6:.1f} MB"
              f" (sidecar {folder_size(sidecar) / 1e6:.1f} MB); Chromium: first page rendered {ready:.2f} s after"
              f" navigation, whole headless run {wall:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6719)
    parser.add_argument("--images", type=int, default=858)
    parser.add_argument("--systems", type=int, default=3)
    args = parser.parse_args()
    run(args.n, args.images, args.systems)
