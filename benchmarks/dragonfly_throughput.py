"""Dragonfly model throughput with random weights (no download): samples/s, the prefill's share
of the FLOP bound, peak GPU memory and whether preprocessing keeps up, per selection ratio,
crop levels and batch size; and, with --compare-reference, the model-side gain over the
reference-style path (every CLIP hidden state kept, logits for every prefill position).

    # GPU, the released sizes (Llama-3.1-8B + CLIP ViT-L/14-336, bf16, SDPA):
    python benchmarks/dragonfly_throughput.py --size full --generation 2 --batch-sizes 1,2,4,8,16,32
    # CPU: the model-side gain at a small size (released CLIP, a 4-layer Llama, full vocabulary):
    python benchmarks/dragonfly_throughput.py --size small --generation 1 --ratios none --levels all \
        --batch-sizes 1 --images 2 --compare-reference
    # CPU smoke run at tiny size:
    python benchmarks/dragonfly_throughput.py --size tiny --batch-sizes 1,4 --images 8

Images have real sizes (a mix of 1024x768, 512x512, 2000x300, 768x1024 noise images). The
prefill (CLIP over every crop, projection, the LLM over span + prompt, last-position logits) is
timed as the median of --warm forwards after one warm-up; its FLOPs are the analytical counts of
medharness.models.dragonfly.cost (docs/dragonfly.md), against --peak-tflops (H100/H200 dense
bf16: 989). End to end runs `generate` with --new-tokens per sample, the next batch's images
prepared by --workers threads meanwhile. "prep img/s" is those threads alone; preprocessing
keeps up when it exceeds the end-to-end samples/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly.configuration import KNOWN_ENCODERS, DragonflyConfig
from medharness.models.dragonfly.cost import sample_flops
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, canvas_tensors
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import build_tiny, build_tokenizer

SIZES = [(1024, 768), (512, 512), (2000, 300), (768, 1024)]
LLAMA_31_8B = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
    rms_norm_eps=1e-5, rope_theta=500000.0, vocab_size=128256, max_position_embeddings=8192,
)
SMALL_LLAMA = dict(LLAMA_31_8B, hidden_size=1024, intermediate_size=3584, num_hidden_layers=4, num_attention_heads=8,
                   num_key_value_heads=2)
ENCODER = {1: "openai/clip-vit-base-patch32", 2: "openai/clip-vit-large-patch14-336"}
LEVELS = {"all": None, "low": "low", "low+medium": "low+medium"}


def released_architecture(generation: int, text: dict, device: torch.device, dtype: torch.dtype) -> tuple[Any, DragonflyProcessor]:
    """The released CLIP of `generation` and a Llama of `text` sizes, random weights, built on the device."""
    from medharness.models.dragonfly.modeling import DragonflyForCausalLM

    tokenizer = build_tokenizer()  # a toy tokenizer; the ids only have to exist
    config = DragonflyConfig(
        text_config=dict(text, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        image_encoder=ENCODER[generation],
        image_placeholder_id=tokenizer.convert_tokens_to_ids("<|reserved_special_token_0|>"),
    )
    config._attn_implementation = "sdpa"
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = DragonflyForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    se = KNOWN_ENCODERS[ENCODER[generation]]["image_size"]
    return model.eval(), DragonflyProcessor(tokenizer, DragonflyImageProcessor(se, generation), config)


@contextmanager
def reference_style(model: Any) -> Iterator[None]:
    """The reference's vision path: the whole tower with every hidden state kept, [-2] taken."""
    model.penultimate_states = lambda pixels: model.image_encoder(pixels, output_hidden_states=True).hidden_states[-2]
    try:
        yield
    finally:
        del model.penultimate_states


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Bench:
    def __init__(self, model: Any, processor: DragonflyProcessor, device: torch.device, dtype: torch.dtype, args: Any) -> None:
        self.model, self.processor, self.device, self.dtype, self.args = model, processor, device, dtype, args
        ip = processor.image_processor
        self.make_pixels = ip.canvas_arrays if device.type != "cpu" else ip
        self.pool = ThreadPoolExecutor(max_workers=args.workers)
        self.prompt = format_prompt("What abnormality is seen in this image?")

    def prepare(self, image: Image.Image) -> tuple[Any, tuple[int, int]]:
        """What the adapter's threads make: pixels (CPU) or canvases (GPU), and the high-crop grid."""
        return self.make_pixels(image), self.processor.high_grid(image)

    def inputs(self, prepared: list, ratio: Optional[float], levels: Optional[str]) -> dict:
        pixels = [canvas_tensors(p, self.device) if isinstance(p, list) else p for p, _ in prepared]
        out = self.processor([self.prompt] * len(pixels), pixels, selection_ratio=ratio, levels=levels,
                             high_grids=[grid for _, grid in prepared])
        out = {k: v.to(self.device) for k, v in out.items()}
        out["pixel_values"] = out["pixel_values"].to(self.dtype)
        return out

    def prefill_seconds(self, inputs: dict, ratio: Optional[float], levels: Optional[str], full_logits: bool) -> float:
        """Median of --warm timed forwards after one warm-up."""
        keep = 0 if full_logits else 1
        times = []
        with torch.inference_mode():
            for i in range(self.args.warm + 1):
                sync(self.device)
                start = time.perf_counter()
                self.model(**inputs, selection_ratio=ratio, levels=levels, logits_to_keep=keep)
                sync(self.device)
                if i:
                    times.append(time.perf_counter() - start)
        return statistics.median(times)

    def generate_seconds(self, batches: list[list[Image.Image]], ratio: Optional[float], levels: Optional[str],
                         full_logits: bool) -> float:
        """Wall time of all batches end to end, the next batch prepared while one runs."""
        extra = {"logits_to_keep": 0} if full_logits else {}
        sync(self.device)
        start = time.perf_counter()
        pending = [self.pool.submit(self.prepare, im) for im in batches[0]]
        for i in range(len(batches)):
            prepared = [f.result() for f in pending]
            if i + 1 < len(batches):
                pending = [self.pool.submit(self.prepare, im) for im in batches[i + 1]]
            with torch.inference_mode():
                self.model.generate(**self.inputs(prepared, ratio, levels), max_new_tokens=self.args.new_tokens,
                                    min_new_tokens=self.args.new_tokens, do_sample=False,
                                    pad_token_id=self.processor.pad_id, selection_ratio=ratio, levels=levels, **extra)
        sync(self.device)
        return time.perf_counter() - start

    def prep_images_per_second(self, images: list[Image.Image]) -> float:
        start = time.perf_counter()
        list(self.pool.map(self.prepare, images))
        return len(images) / (time.perf_counter() - start)

    def run(self, images: list[Image.Image], ratio: Optional[float], levels: Optional[str], batch: int) -> dict:
        batches = [images[i : i + batch] for i in range(0, len(images), batch)]
        first = self.inputs([self.prepare(im) for im in batches[0]], ratio, levels)
        plan = self.processor.plan(ratio, None, levels)
        crops = first["pixel_values"].shape[1]
        lengths = first["attention_mask"].sum(1).tolist()
        flops = sum(sum(v for k, v in sample_flops(self.model.config, plan, crops, n, 1).items()
                        if k in ("flops_vision", "flops_projector", "flops_prefill")) for n in lengths)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        prefill = self.prefill_seconds(first, ratio, levels, full_logits=False)
        seconds = self.generate_seconds(batches, ratio, levels, full_logits=False)
        row = {
            "ratio": "default" if ratio is None else f"{ratio:g}", "levels": levels or "all", "batch": batch,
            "samples_per_s": len(images) / seconds, "visual": self.processor.visual_tokens(ratio, levels),
            "prefill_ms": prefill * 1000, "tflops": flops / prefill / 1e12,
            "share": flops / prefill / (self.args.peak_tflops * 1e12),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else float("nan"),
            "prep_per_s": self.prep_images_per_second(images),
        }
        if self.args.compare_reference:
            with reference_style(self.model):
                row["ref_prefill_ms"] = self.prefill_seconds(first, ratio, levels, full_logits=True) * 1000
                row["ref_samples_per_s"] = len(images) / self.generate_seconds(batches, ratio, levels, full_logits=True)
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("full", "small", "tiny"), default="tiny")
    parser.add_argument("--generation", type=int, choices=(1, 2), default=2)
    parser.add_argument("--ratios", default="none,0.25,0.5,1.0", help="comma list; none = the generation's default")
    parser.add_argument("--levels", default="all,low,low+medium", help="comma list of all, low, low+medium")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--images", type=int, default=8, help="samples per configuration")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--warm", type=int, default=3, help="timed prefill forwards after one warm-up")
    parser.add_argument("--workers", type=int, default=4, help="preprocessing threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), default="auto")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the device (H100/H200: 989)")
    parser.add_argument("--compare-reference", action="store_true", help="also time the reference-style path")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dtype = getattr(torch, args.dtype) if args.dtype != "auto" else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if args.size == "tiny":
        model, processor = build_tiny(args.generation)
        model = model.to(device=device, dtype=dtype)
    else:
        model, processor = released_architecture(args.generation, LLAMA_31_8B if args.size == "full" else SMALL_LLAMA, device, dtype)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in
              (SIZES[i % len(SIZES)] for i in range(args.images))]
    bench = Bench(model, processor, device, dtype, args)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"Dragonfly gen {args.generation}, {args.size} size, random weights, {dtype}, {name}, {args.images} samples "
          f"x {args.new_tokens} new tokens; prefill median of {args.warm}; FLOP share vs {args.peak_tflops:g} TFLOP/s")
    header = (f"{'ratio':>7s} {'levels':>10s} {'batch':>5s} {'samples/s':>9s} {'visual':>6s} {'prefill ms':>10s} "
              f"{'TFLOP/s':>8s} {'share':>6s} {'peak GiB':>8s} {'prep img/s':>10s} {'keeps up':>8s}")
    if args.compare_reference:
        header += f" {'ref prefill ms':>14s} {'prefill x':>9s} {'ref samples/s':>13s} {'e2e x':>6s}"
    print(header)
    levels_list = [LEVELS[v.strip()] for v in args.levels.split(",")]
    ratios = [None if r.strip().lower() == "none" else float(r) for r in args.ratios.split(",")]
    for levels in levels_list:
        for ratio in (ratios if levels is None else [None]):  # without high crops a ratio means nothing
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                r = bench.run(images, ratio, levels, batch)
                line = (f"{r['ratio']:>7s} {r['levels']:>10s} {r['batch']:5d} {r['samples_per_s']:9.2f} {r['visual']:6d} "
                        f"{r['prefill_ms']:10.1f} {r['tflops']:8.3f} {r['share']:6.1%} {r['peak_gib']:8.2f} "
                        f"{r['prep_per_s']:10.1f} {'yes' if r['prep_per_s'] >= r['samples_per_s'] else 'NO':>8s}")
                if args.compare_reference:
                    line += (f" {r['ref_prefill_ms']:14.1f} {r['ref_prefill_ms'] / r['prefill_ms']:9.2f} "
                             f"{r['ref_samples_per_s']:13.2f} {r['samples_per_s'] / r['ref_samples_per_s']:6.2f}")
                print(line, flush=True)
    bench.pool.shutdown()


if __name__ == "__main__":
    main()
