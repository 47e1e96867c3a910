"""Dragonfly image preprocessing speed: the released per-crop CLIP processor path against the
fast paths (all bit-exact, checked here), per core; on a GPU, the device paths; then the CPU
path overlapped with model work by the adapter's prefetching thread pool.

    python benchmarks/dragonfly_preprocess.py                 # gen 2, 1024x768, 12 images
    python benchmarks/dragonfly_preprocess.py --generation 1 --size 2000x300

Rows: the reference; CPU runs (the compiled kernels of native.py: Pillow's resize arithmetic,
vectorised, and the crops cut and looked up in one pass); the same without the kernels (an
install with no C compiler: PIL resizes, numpy normalisation); the host's share of a device
run (decoding only: the image goes to the device as it is); the exact torch port of the
resizes run on the CPU, which shows why CPU runs do not use it. With CUDA, two device rows: the
canvases resized on the device (what device runs do) against PIL canvases cut on the device.

The overlap part prepares PNG-encoded requests as a device run does (decoding only) and stands
in for GPU batches with a sleep of --model-seconds per batch (a GPU step leaves the CPU free,
which a CPU-bound stand-in would not), so it shows how much of the preparation hides behind
the model, not model speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly import native
from medharness.models.dragonfly.image_processing import (
    DragonflyImageProcessor, canvas_tensors, canvases, clip_reference_processor, reference_pixel_values, rgb_array,
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


def device_images_per_second(fn, images: list[Image.Image], repeats: int) -> float:
    """Wall images/s of fn on the GPU, synchronised, best of `repeats` (after a warm-up)."""
    fn(images[0])
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            fn(image)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=int, default=2, choices=(1, 2))
    parser.add_argument("--size", default="1024x768", help="image width x height")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model-seconds", type=float, default=None, help="stand-in GPU time per batch (default: the CPU path's time for a batch)")
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
    on_cpu = lambda im: fast.expand(canvas_tensors(fast.canvas_arrays(im)))  # noqa: E731
    assert torch.equal(fast(images[0]), expected), "CPU path not bit-exact"
    assert torch.equal(on_cpu(images[0]), expected), "device path (run on the CPU) not bit-exact"
    without_kernels = lambda im: fast.pil_crops(im, np.empty((fast.num_crops, 3, se, se), dtype=np.float32))  # noqa: E731
    assert native.AVAILABLE, "the compiled kernels are not built: pip install -e . with a C compiler present"
    rows = [
        ("reference: every crop through the CLIP processor", lambda im: reference_pixel_values(im, clip, se, args.generation)),
        ("CPU runs: compiled resizes and crops", fast),
        ("CPU runs without the kernels: PIL resizes, numpy crops", without_kernels),
        ("device runs, host part: the decoded image as an array", fast.canvas_arrays),
        ("torch port of the resizes, all on the CPU", on_cpu),
    ]
    print(f"gen {args.generation}, {width}x{height}, {fast.num_crops} crops of {se}px, one thread, {args.images} images, best of {args.repeats}; all paths bit-exact")
    print(f"  {'path':58s} {'img/CPU-s':>10s} {'img/s wall':>11s} {'speed-up (CPU)':>15s}")
    base = None
    for name, fn in rows:
        per_cpu, per_wall = images_per_second(fn, images, args.repeats)
        base = base or per_cpu
        if fn is fast:
            cpu_wall = per_wall
        print(f"  {name:58s} {per_cpu:10.2f} {per_wall:11.2f} {per_cpu / base:14.1f}x")
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        on_gpu = lambda im: fast.expand(canvas_tensors(fast.canvas_arrays(im), cuda))  # noqa: E731
        pil_canvases = lambda im: fast.expand(canvas_tensors([rgb_array(c) for c in canvases(im, se, args.generation)], cuda))  # noqa: E731
        assert torch.equal(on_gpu(images[0]).cpu(), expected), "device path on the GPU not bit-exact"
        assert torch.equal(pil_canvases(images[0]).cpu(), expected), "PIL canvases cut on the GPU not bit-exact"
        print(f"  {torch.cuda.get_device_name()}, wall images/s (one host thread):")
        for name, fn in [("canvases resized on the device (device runs)", on_gpu), ("PIL canvases on the host, cut on the device", pil_canvases)]:
            print(f"  {name:58s} {device_images_per_second(fn, images, args.repeats):22.2f}")

    requests = encoded_requests(images, "mem")
    model_seconds = args.model_seconds if args.model_seconds is not None else args.batch / cpu_wall
    sequential, pipelined = overlap(requests, fast, args.batch, model_seconds, args.workers)
    print(f"overlap: batches of {args.batch}, stand-in model time {model_seconds * 1000:.0f} ms per batch, {args.workers} prefetch threads")
    print(f"  prepare then model, in turn : {len(requests) / sequential:7.2f} images/s")
    print(f"  prefetching the next batch  : {len(requests) / pipelined:7.2f} images/s  ({sequential / pipelined:.2f}x)")


if __name__ == "__main__":
    main()
