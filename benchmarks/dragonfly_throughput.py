"""Dragonfly generation throughput with random weights (no download): samples/s, visual tokens,
peak GPU memory and the share of the prefill FLOP bound, per selection ratio and batch size.

    # GPU, the released sizes (Llama-3.1-8B + CLIP ViT-L/14-336, bf16, SDPA), a few minutes:
    python benchmarks/dragonfly_throughput.py --size full --generation 2 --ratios none,0.25,0.5,1.0 --batch-sizes 1,8
    # CPU smoke run at tiny size:
    python benchmarks/dragonfly_throughput.py --size tiny --batch-sizes 1,4 --images 8

Images have real sizes (a mix of 1024x768, 512x512, 2000x300, 768x1024 noise images);
preparation runs in the adapter's prefetching threads, overlapped with the model. Decoding is
fixed at --new-tokens per sample so that every configuration does the same work. The FLOP
share is the measured prefill (vision encoder + projection + LLM over the prompt, one forward)
against --peak-tflops (default: H100 SXM dense bf16, 989; on CPU give your own or ignore it).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly.configuration import KNOWN_ENCODERS, DragonflyConfig
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, canvas_tensors
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import build_tiny, build_tokenizer

SIZES = [(1024, 768), (512, 512), (2000, 300), (768, 1024)]
LLAMA_31_8B = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
    rms_norm_eps=1e-5, rope_theta=500000.0, vocab_size=128256, max_position_embeddings=8192,
)
ENCODER = {1: "openai/clip-vit-base-patch32", 2: "openai/clip-vit-large-patch14-336"}


def full_model(generation: int, device: torch.device, dtype: torch.dtype) -> tuple[Any, DragonflyProcessor]:
    """The released architecture with random weights, built directly on the device."""
    from medharness.models.dragonfly.modeling import DragonflyForCausalLM

    tokenizer = build_tokenizer()  # a toy tokenizer; the ids only have to exist
    text = dict(LLAMA_31_8B, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = DragonflyConfig(
        text_config=text, image_encoder=ENCODER[generation], dragonfly_generation=generation,
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


def prefill_flops(config: DragonflyConfig, crops: int, prompt_lengths: list[int]) -> float:
    """Matmul FLOPs of one prefill: every crop through CLIP, the projection, the LLM over each
    prompt (causal attention counted as half the square), one lm_head row per sample."""
    v, t = config.vision_config, config.text_config
    tokens = (v.image_size // v.patch_size) ** 2 + 1
    per_layer = 2 * tokens * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size) + 2 * tokens**2 * v.hidden_size
    patch = 2 * (tokens - 1) * 3 * v.patch_size**2 * v.hidden_size
    vision = crops * (v.num_hidden_layers * per_layer + patch + 2 * tokens * v.hidden_size * t.hidden_size)
    head_dim = t.hidden_size // t.num_attention_heads
    kv = t.num_key_value_heads * head_dim
    dense = 2 * (2 * t.hidden_size**2 + 2 * t.hidden_size * kv + 3 * t.hidden_size * t.intermediate_size)
    llm = sum(t.num_hidden_layers * (n * dense + 2 * n * n * t.hidden_size) + 2 * t.hidden_size * t.vocab_size for n in prompt_lengths)
    return float(vision + llm)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(model: Any, processor: DragonflyProcessor, images: list[Image.Image], ratio: Optional[float], batch: int,
        new_tokens: int, device: torch.device, dtype: torch.dtype, peak: float) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    ip = processor.image_processor
    on_device = device.type != "cpu"
    prepare = ip.canvas_arrays if on_device else ip
    pool = ThreadPoolExecutor(max_workers=4)
    batches = [images[i : i + batch] for i in range(0, len(images), batch)]
    prompt = format_prompt("What abnormality is seen in this image?")

    def inputs_for(prepared: list) -> dict:
        pixels = [canvas_tensors(p, device) if on_device else p for p in prepared]
        out = processor([prompt] * len(pixels), pixels, selection_ratio=ratio)
        out = {k: v.to(device) for k, v in out.items()}
        out["pixel_values"] = out["pixel_values"].to(dtype)
        return out

    # prefill alone, once, for the FLOP share (after a warm-up)
    first = inputs_for([prepare(im) for im in batches[0]])
    with torch.inference_mode():
        model(**first, logits_to_keep=1)
        sync(device)
        start = time.perf_counter()
        model(**first, logits_to_keep=1)
        sync(device)
    prefill_s = time.perf_counter() - start
    lengths = first["attention_mask"].sum(1).tolist()
    flops = prefill_flops(model.config, ip.num_crops * len(lengths), lengths)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    pending = [pool.submit(prepare, im) for im in batches[0]]
    done = 0
    for i in range(len(batches)):
        prepared = [f.result() for f in pending]
        if i + 1 < len(batches):  # prepare the next batch while this one runs
            pending = [pool.submit(prepare, im) for im in batches[i + 1]]
        inputs = inputs_for(prepared)
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=processor.pad_id, selection_ratio=ratio)
        done += len(prepared)
    sync(device)
    seconds = time.perf_counter() - start
    pool.shutdown()
    return {
        "ratio": "default" if ratio is None else ratio, "batch": batch, "samples_per_s": done / seconds,
        "visual_tokens": processor.visual_tokens(ratio), "prefill_tokens": int(np.mean(lengths)),
        "prefill_ms": prefill_s * 1000, "prefill_tflops": flops / prefill_s / 1e12,
        "flop_share": flops / prefill_s / (peak * 1e12),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("full", "tiny"), default="tiny")
    parser.add_argument("--generation", type=int, choices=(1, 2), default=2)
    parser.add_argument("--ratios", default="none,0.25,0.5,1.0", help="comma list; none = the generation's default")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--images", type=int, default=8, help="samples per configuration")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if args.size == "full":
        model, processor = full_model(args.generation, device, dtype)
    else:
        model, processor = build_tiny(args.generation)
        model = model.to(device=device, dtype=dtype)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in
              (SIZES[i % len(SIZES)] for i in range(args.images))]
    ratios = [None if r.strip().lower() == "none" else float(r) for r in args.ratios.split(",")]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"Dragonfly gen {args.generation}, {args.size} size, random weights, {dtype}, {name}, "
          f"{args.images} samples x {args.new_tokens} new tokens; FLOP share vs {args.peak_tflops:g} TFLOP/s")
    print(f"{'ratio':>8s} {'batch':>5s} {'samples/s':>10s} {'visual':>7s} {'prefill tok':>11s} {'prefill ms':>10s} "
          f"{'TFLOP/s':>8s} {'share':>6s} {'peak GiB':>8s}")
    for ratio in ratios:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            r = run(model, processor, images, ratio, batch, args.new_tokens, device, dtype, args.peak_tflops)
            print(f"{str(r['ratio']):>8s} {r['batch']:5d} {r['samples_per_s']:10.2f} {r['visual_tokens']:7d} "
                  f"{r['prefill_tokens']:11d} {r['prefill_ms']:10.1f} {r['prefill_tflops']:8.3f} "
                  f"{r['flop_share']:6.1%} {r['peak_gib']:8.2f}")


if __name__ == "__main__":
    main()
