"""Dragonfly end to end on the CPU, one thread: preprocessing + forward + greedy generation, the
reference-style path against this implementation's, with the same outputs checked here.

    python benchmarks/dragonfly_end_to_end.py                      # gen 2, 8 images
    python benchmarks/dragonfly_end_to_end.py --generation 1 --new-tokens 16

The model has the released crop geometry (336 px crops of 14 px patches for gen 2, 224 px of
32 px for gen 1: real crop, patch and visual-token counts) at toy widths (CLIP and a Llama of
width 32 and 64, two layers each, random weights), so the figures weigh preprocessing as the
released models' inputs do while the network stays small. A full-size model moves the balance
towards the network; benchmarks/dragonfly_throughput.py --size full measures that on a GPU.

Reference-style preprocessing sends every crop through the CLIP image processor (the released
code's path); the fast path is `DragonflyImageProcessor` (PIL resizes, table-exact float32).
Both run the same model, as this tree builds it: how the vision tower and the logits are
computed is the model's business and the same on both sides here.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly.configuration import DragonflyConfig
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, clip_reference_processor, reference_pixel_values
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import ENCODER_FOLDER, TINY_SEED, TINY_TEXT, TINY_VISION, build_tokenizer

SIZES = [(1024, 768), (512, 512), (2000, 300), (768, 1024)]
CROP_GEOMETRY = {1: dict(image_size=224, patch_size=32), 2: dict(image_size=336, patch_size=14)}


def real_geometry_model(generation: int) -> tuple[Any, DragonflyProcessor]:
    """The tiny model's widths with the released crop and patch sizes."""
    from transformers import CLIPVisionConfig

    from medharness.models.dragonfly.modeling import DragonflyForCausalLM

    tokenizer = build_tokenizer()
    vision = CLIPVisionConfig(**dict(TINY_VISION[generation], **CROP_GEOMETRY[generation])).to_dict()
    text = dict(TINY_TEXT, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = DragonflyConfig(
        text_config=text, vision_config=vision, image_encoder=ENCODER_FOLDER, dragonfly_generation=generation,
        image_placeholder_id=tokenizer.convert_tokens_to_ids("<|reserved_special_token_0|>"),
    )
    torch.manual_seed(TINY_SEED + generation)
    model = DragonflyForCausalLM(config).eval()
    se = CROP_GEOMETRY[generation]["image_size"]
    return model, DragonflyProcessor(tokenizer, DragonflyImageProcessor(se, generation), config)


def answer(model: Any, processor: DragonflyProcessor, pixels: torch.Tensor, new_tokens: int) -> list[int]:
    inputs = processor([format_prompt("What abnormality is seen in this image?")], [pixels])
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=processor.pad_id)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def timed(images: list[Image.Image], prepare: Callable[[Image.Image], torch.Tensor], model: Any,
          processor: DragonflyProcessor, new_tokens: int) -> tuple[float, float, list[list[int]]]:
    """(preprocessing CPU-seconds, model CPU-seconds, tokens per image) over all images."""
    prep = run = 0.0
    tokens = []
    for image in images:
        start = time.process_time()
        pixels = prepare(image)
        middle = time.process_time()
        tokens.append(answer(model, processor, pixels, new_tokens))
        prep, run = prep + middle - start, run + time.process_time() - middle
    return prep, run, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=int, default=2, choices=(1, 2))
    parser.add_argument("--images", type=int, default=8, help="noise images, cycling through 1024x768, 512x512, 2000x300, 768x1024")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="best of, per path; the paths alternate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, processor = real_geometry_model(args.generation)
    ip = processor.image_processor
    clip = clip_reference_processor(image_size=ip.image_size)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in
              (SIZES[i % len(SIZES)] for i in range(args.images))]
    paths = {
        "reference-style": lambda im: reference_pixel_values(im, clip, ip.image_size, args.generation),
        "this implementation": ip,
    }
    answer(model, processor, ip(images[0]), 1)  # warm-up
    best: dict[str, tuple[float, float]] = {}
    outputs: dict[str, list[list[int]]] = {}
    for _ in range(args.repeats):
        for name, prepare in paths.items():
            prep, run, outputs[name] = timed(images, prepare, model, processor, args.new_tokens)
            if name not in best or prep + run < sum(best[name]):
                best[name] = (prep, run)
    assert outputs["reference-style"] == outputs["this implementation"], "the two paths generate different tokens"
    print(f"gen {args.generation}, {ip.num_crops} crops of {ip.image_size}px, {processor.visual_tokens(None)} visual tokens, "
          f"{args.images} images x {args.new_tokens} new tokens, one thread, best of {args.repeats}; same tokens on both paths")
    print(f"  {'path':22s} {'preprocess s':>12s} {'model s':>8s} {'total s':>8s} {'img/CPU-s':>10s} {'speed-up':>9s}")
    base = sum(best["reference-style"])
    for name, (prep, run) in best.items():
        print(f"  {name:22s} {prep:12.2f} {run:8.2f} {prep + run:8.2f} {args.images / (prep + run):10.2f} {base / (prep + run):8.2f}x")


if __name__ == "__main__":
    main()
