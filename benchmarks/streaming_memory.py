"""Peak memory of `medharness run` on a Path-VQA-sized parquet split: images stay in the file.

    python benchmarks/streaming_memory.py [--rows 6719] [--limits 1000,6719] [--batch-size 64] [--data DIR]

Writes a split in the Hugging Face layout (`data/test-00000-of-00001.parquet`, `{bytes, path}`
image structs, row groups of 100 rows as the hub writes image datasets) with distinct images of
300-600 px a side (nine JPEGs to one PNG, about 33 kB each, some 220 MB in all) under a
temporary folder (or DIR, kept and reused by later calls), then runs `medharness run --task pathvqa --model mock` once per limit as a
subprocess and prints each one's peak resident memory (ru_maxrss from wait4). Loading keeps
image references, not bytes, so the peak should barely grow with the number of samples.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROW_GROUP = 100  # datasets' PARQUET_ROW_GROUP_SIZE_FOR_IMAGE_DATASETS
QUESTIONS = [("is there any inflammation?", "yes"), ("what does this image show?", "necrosis"),
             ("is the nucleus enlarged?", "no"), ("what is present?", "fibrosis")]


def encoded_image(rng: random.Random, index: int) -> bytes:
    width, height = rng.randrange(300, 601), rng.randrange(300, 601)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(120, 256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(10, 80)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.randrange(256) for _ in range(3)))
    png = index % 10 == 0
    if not png:  # texture, so JPEG sizes are those of real micrographs rather than of flat colour
        image = Image.blend(image, Image.effect_noise((width, height), 40).convert("RGB"), 0.12)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if png else "JPEG", quality=85)
    return buffer.getvalue()


def write_split(folder: Path, rows: int) -> int:
    """The split, written one row group at a time; returns its size in bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "data" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image_type), ("question", pa.string()), ("answer", pa.string())])
    rng = random.Random(6719)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            group = [{"image": {"bytes": encoded_image(rng, i), "path": f"test_{i}.jpg"},
                      "question": QUESTIONS[i % 4][0], "answer": QUESTIONS[i % 4][1]}
                     for i in range(start, min(rows, start + ROW_GROUP))]
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
    return path.stat().st_size


def peak_rss(data: Path, results: Path, limit: int, batch_size: int) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one `medharness run` subprocess."""
    command = [sys.executable, "-m", "medharness", "run", "--task", "pathvqa", "--model", "mock",
               "--data-dir", str(data), "--limit", str(limit), "--batch-size", str(batch_size),
               "--results", str(results), "--no-cache", "--quiet"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"medharness run failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}\n{errors.decode()}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6719)
    parser.add_argument("--limits", default="1000,6719")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", type=Path, help="folder for the split, kept and reused when present")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medharness-stream-") as tmp:
        data = args.data or Path(tmp) / "pathvqa-hf"
        existing = data / "data" / "test-00000-of-00001.parquet"
        size = existing.stat().st_size if args.data and existing.is_file() else write_split(data, args.rows)
        print(f"split: {args.rows:,} rows, {size / 2**20:,.0f} MiB of parquet ({data})")
        peaks = []
        for limit in [int(n) for n in args.limits.split(",")]:
            peak, seconds = peak_rss(data, Path(tmp) / f"results-{limit}", limit, args.batch_size)
            peaks.append(peak)
            print(f"run --limit {limit:,}: peak RSS {peak:,.0f} MiB ({seconds:.1f} s)")
        print(f"growth from the first to the last limit: {peaks[-1] - peaks[0]:+,.0f} MiB")


if __name__ == "__main__":
    main()
