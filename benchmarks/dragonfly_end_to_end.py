"""Dragonfly end to end on the CPU, one thread: preprocessing + forward + greedy generation, the
reference-style path against this implementation's, with the same outputs checked here.

    python benchmarks/dragonfly_end_to_end.py                      # gen 2, 8 images
    python benchmarks/dragonfly_end_to_end.py --generation 1 --new-tokens 16

The model has the released crop geometry (336 px crops of 14 px patches for gen 2, 224 px of
32 px for gen 1: real crop, patch and visual-token counts) at toy widths (CLIP and a Llama of
width 32 and 64, two layers each, random weights), so the figures weigh preprocessing as the
released models' inputs do while the network stays small. A full-size model moves the balance
towards the network; benchmarks/dragonfly_throughput.py --size full measures that on a GPU.

Rows: `reference-style`, the issue's reference (every crop through the CLIP image processor,
the released code's path; the whole vision tower with every hidden state kept; logits for every
prefill position); `reference prep only`, the reference's preprocessing before this tree's
network; `this implementation`, `DragonflyImageProcessor` (the compiled kernels of native.py)
and this tree's network (the tower stopped at the layer used, last-position logits).
--vision-layers / --text-layers set released depths at the same toy widths.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from typing import Any, Callable, Optional

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly.configuration import DragonflyConfig
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, clip_reference_processor, reference_pixel_values
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import ENCODER_FOLDER, TINY_SEED, TINY_TEXT, TINY_VISION, build_tokenizer

from dragonfly_throughput import reference_style  # run from benchmarks/: the script's folder is on sys.path

SIZES = [(1024, 768), (512, 512), (2000, 300), (768, 1024)]
CROP_GEOMETRY = {1: dict(image_size=224, patch_size=32), 2: dict(image_size=336, patch_size=14)}


def real_geometry_model(generation: int, vision_layers: Optional[int] = None, text_layers: Optional[int] = None,
                        ) -> tuple[Any, DragonflyProcessor]:
    """The tiny model's widths with the released crop and patch sizes (and, if given, depths)."""
    from transformers import CLIPVisionConfig

    from medharness.models.dragonfly.modeling import DragonflyForCausalLM

    tokenizer = build_tokenizer()
    depth = {"num_hidden_layers": vision_layers} if vision_layers else {}
    vision = CLIPVisionConfig(**dict(TINY_VISION[generation], **CROP_GEOMETRY[generation], **depth)).to_dict()
    text = dict(TINY_TEXT, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                **({"num_hidden_layers": text_layers} if text_layers else {}))
    config = DragonflyConfig(
        text_config=text, vision_config=vision, image_encoder=ENCODER_FOLDER, dragonfly_generation=generation,
        image_placeholder_id=tokenizer.convert_tokens_to_ids("<|reserved_special_token_0|>"),
    )
    torch.manual_seed(TINY_SEED + generation)
    model = DragonflyForCausalLM(config).eval()
    se = CROP_GEOMETRY[generation]["image_size"]
    return model, DragonflyProcessor(tokenizer, DragonflyImageProcessor(se, generation), config)


def answer(model: Any, processor: DragonflyProcessor, pixels: torch.Tensor, new_tokens: int,
           reference_model: bool = False) -> list[int]:
    """Greedy tokens; `reference_model`: the reference's network path (the whole vision tower
    with every hidden state kept, logits for every prefill position)."""
    inputs = processor([format_prompt("What abnormality is seen in this image?")], [pixels])
    extra = {"logits_to_keep": 0} if reference_model else {}
    with torch.inference_mode(), (reference_style(model) if reference_model else nullcontext()):
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=processor.pad_id, **extra)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def timed(images: list[Image.Image], prepare: Callable[[Image.Image], torch.Tensor], model: Any,
          processor: DragonflyProcessor, new_tokens: int, reference_model: bool) -> tuple[float, float, list[list[int]]]:
    """(preprocessing CPU-seconds, model CPU-seconds, tokens per image) over all images."""
    prep = run = 0.0
    tokens = []
    for image in images:
        start = time.process_time()
        pixels = prepare(image)
        middle = time.process_time()
        tokens.append(answer(model, processor, pixels, new_tokens, reference_model))
        prep, run = prep + middle - start, run + time.process_time() - middle
    return prep, run, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=int, default=2, choices=(1, 2))
    parser.add_argument("--images", type=int, default=8, help="noise images, cycling through 1024x768, 512x512, 2000x300, 768x1024")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="best of, per path; the paths alternate")
    parser.add_argument("--vision-layers", type=int, default=None, help="CLIP depth (default: the tiny model's 2)")
    parser.add_argument("--text-layers", type=int, default=None, help="Llama depth (default: the tiny model's 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, processor = real_geometry_model(args.generation, args.vision_layers, args.text_layers)
    ip = processor.image_processor
    clip = clip_reference_processor(image_size=ip.image_size)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in
              (SIZES[i % len(SIZES)] for i in range(args.images))]
    paths = {  # name: (preprocessing, the reference's network path)
        "reference-style": (lambda im: reference_pixel_values(im, clip, ip.image_size, args.generation), True),
        "reference prep only": (lambda im: reference_pixel_values(im, clip, ip.image_size, args.generation), False),
        "this implementation": (ip, False),
    }
    answer(model, processor, ip(images[0]), 1)  # warm-up
    best: dict[str, tuple[float, float]] = {}
    outputs: dict[str, list[list[int]]] = {}
    for _ in range(args.repeats):
        for name, (prepare, reference_model) in paths.items():
            prep, run, outputs[name] = timed(images, prepare, model, processor, args.new_tokens, reference_model)
            if name not in best or prep + run < sum(best[name]):
                best[name] = (prep, run)
    assert all(tokens == outputs["this implementation"] for tokens in outputs.values()), "the paths generate different tokens"
    print(f"gen {args.generation}, {ip.num_crops} crops of {ip.image_size}px, {processor.visual_tokens(None)} visual tokens, "
          f"{args.images} images x {args.new_tokens} new tokens, one thread, best of {args.repeats}; same tokens on both paths")
    print(f"  {'path':22s} {'preprocess s':>12s} {'model s':>8s} {'total s':>8s} {'img/CPU-s':>10s} {'speed-up':>9s}")
    base = sum(best["reference-style"])
    for name, (prep, run) in best.items():
        print(f"  {name:22s} {prep:12.2f} {run:8.2f} {prep + run:8.2f} {args.images / (prep + run):10.2f} {base / (prep + run):8.2f}x")


if __name__ == "__main__":
    main()
