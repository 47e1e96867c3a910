"""Dragonfly image preprocessing speed: the released per-crop CLIP processor path against the
table-based fast path (bit-exact, checked here), per core; then the fast path overlapped with
model work by the adapter's prefetching thread pool.

    python benchmarks/dragonfly_preprocess.py                 # gen 2, 1024x768, 12 images
    python benchmarks/dragonfly_preprocess.py --generation 1 --size 2000x300

The overlap part stands in for GPU batches with a sleep of --model-seconds per batch (a GPU
step leaves the CPU free, which a CPU-bound stand-in would not), so it shows how much of the
preparation hides behind the model, not model speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly.image_processing import (
    DragonflyImageProcessor, canvas_tensors, clip_reference_processor, reference_pixel_values,
)
from medharness.models.dragonfly.prefetch import ImagePrefetcher, prepare_request_image
from medharness.schema import ImageRef, Request


def images_per_second(fn, images: list[Image.Image], repeats: int) -> tuple[float, float]:
    """(images per CPU-second, images per wall-second), best of `repeats`. CPU time is the
    per-core figure that holds on a shared machine; wall time also counts waiting for a core."""
    fn(images[0])  # warm-up (imports, allocator)
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        for image in images:
            fn(image)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return len(images) / best_cpu, len(images) / best_wall


def encoded_requests(images: list[Image.Image], folder: str) -> list[Request]:
    import io

    out = []
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(Request(sample_id=str(i), prompt="q", images=[ImageRef(path=f"{i}.png", data=buffer.getvalue())]))
    return out


def overlap(requests: list[Request], processor: DragonflyImageProcessor, batch: int, model_seconds: float, workers: int) -> tuple[float, float]:
    """(seconds sequential, seconds with prefetching) for the same batches."""
    batches = [requests[i : i + batch] for i in range(0, len(requests), batch)]
    start = time.perf_counter()
    for b in batches:
        for r in b:
            prepare_request_image(r.images, processor, canvases_only=True)
        time.sleep(model_seconds)
    sequential = time.perf_counter() - start

    prefetcher = ImagePrefetcher(processor, workers, canvases_only=True)
    start = time.perf_counter()
    prefetcher.submit(batches[0])
    for i, b in enumerate(batches):
        ready = [prefetcher.get(r) for r in b]
        assert all(p.error is None for p in ready)
        if i + 1 < len(batches):
            prefetcher.submit(batches[i + 1])  # the next batch is prepared while this one runs
        time.sleep(model_seconds)
    pipelined = time.perf_counter() - start
    prefetcher.close()
    return sequential, pipelined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=int, default=2, choices=(1, 2))
    parser.add_argument("--size", default="1024x768", help="image width x height")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model-seconds", type=float, default=None, help="stand-in GPU time per batch (default: the fast path's time for a batch)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # per core: every path single-threaded
    width, height = (int(v) for v in args.size.lower().split("x"))
    se = 224 if args.generation == 1 else 336
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(args.images)]

    fast = DragonflyImageProcessor(se, args.generation)
    clip = clip_reference_processor(image_size=se)
    expected = reference_pixel_values(images[0], clip, se, args.generation)
    assert torch.equal(fast(images[0]), expected), "fast float path not bit-exact"
    assert torch.equal(fast.expand(canvas_tensors(fast.canvas_arrays(images[0]))), expected), "canvas path not bit-exact"
    rows = [
        ("reference: every crop through the CLIP processor", lambda im: reference_pixel_values(im, clip, se, args.generation)),
        ("fast: float32 crops on the CPU (CPU runs)", fast),
        ("fast: uint8 canvases, crops cut on the device (GPU runs)", fast.canvas_arrays),
    ]
    print(f"gen {args.generation}, {width}x{height}, {fast.num_crops} crops of {se}px, one thread, {args.images} images, best of {args.repeats}; all paths bit-exact")
    print(f"  {'path':58s} {'img/CPU-s':>10s} {'img/s wall':>11s} {'speed-up (CPU)':>15s}")
    base = None
    for name, fn in rows:
        per_cpu, per_wall = images_per_second(fn, images, args.repeats)
        base = base or per_cpu
        print(f"  {name:58s} {per_cpu:10.2f} {per_wall:11.2f} {per_cpu / base:14.1f}x")

    requests = encoded_requests(images, "mem")
    model_seconds = args.model_seconds if args.model_seconds is not None else args.batch / per_wall
    sequential, pipelined = overlap(requests, fast, args.batch, model_seconds, args.workers)
    print(f"overlap: batches of {args.batch}, stand-in model time {model_seconds * 1000:.0f} ms per batch, {args.workers} prefetch threads")
    print(f"  prepare then model, in turn : {len(requests) / sequential:7.2f} images/s")
    print(f"  prefetching the next batch  : {len(requests) / pipelined:7.2f} images/s  ({sequential / pipelined:.2f}x)")


if __name__ == "__main__":
    main()
