"""Tiny random Dragonfly checkpoints of both generations, built locally and deterministically.

They have the real layouts (crop counts, pooling, selection, token span, prompt) at toy widths,
a byte-level BPE tokenizer trained here with the Llama-3 special tokens, and RANDOM weights:
their answers mean nothing. Tests and the demo use them; the `dragonfly-tiny` cards say so.
`save_checkpoint` writes any Dragonfly model in the released folder layout.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from medharness.models.dragonfly.configuration import DragonflyConfig
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor

SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
]
CORPUS = [
    "Is there evidence of an aortic aneurysm? yes no",
    "What organ is shown in this image? The liver, the lung, the brain, the kidney.",
    "Are there signs of inflammation in the tissue sample? Hematoxylin and eosin stain.",
    "How many lesions are visible on the CT scan of the chest? one two three",
    "Which side of the body is the abnormality on? left right upper lower",
    "The MRI shows a mass in the right frontal lobe with surrounding edema.",
    "Describe the findings of this chest x-ray: no acute cardiopulmonary process.",
] * 4
TINY_SEED = 1234
TINY_VERSION = 1  # bump when the recipe changes, so cached folders are rebuilt

# Toy widths; the grids keep the real structure (gen 2's patch grid pools 4x4).
TINY_VISION = {
    1: dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
    2: dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=4),
}
TINY_TEXT = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=500000.0, initializer_range=0.1,
)
ENCODER_FOLDER = "clip-encoder"  # config.json's image_encoder, relative to the checkpoint


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer (Llama-3 style) trained on a fixed corpus: deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


def tiny_config(generation: int, tokenizer: Any) -> DragonflyConfig:
    from transformers import CLIPVisionConfig

    text = dict(TINY_TEXT, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return DragonflyConfig(
        text_config=text, vision_config=CLIPVisionConfig(**TINY_VISION[generation]).to_dict(),
        image_encoder=ENCODER_FOLDER, dragonfly_generation=generation,
        image_placeholder_id=tokenizer.convert_tokens_to_ids("<|reserved_special_token_0|>"),
        architectures=["DragonflyForCausalLM"],
    )


def build_tiny(generation: int) -> tuple[Any, Any]:
    """(model, processor) with random weights from a fixed seed."""
    from medharness.models.dragonfly.modeling import DragonflyForCausalLM
    from medharness.models.dragonfly.processing import DragonflyProcessor

    tokenizer = build_tokenizer()
    config = tiny_config(generation, tokenizer)
    torch.manual_seed(TINY_SEED + generation)
    model = DragonflyForCausalLM(config).eval()
    processor = DragonflyProcessor(tokenizer, DragonflyImageProcessor(config.vision_config.image_size, generation), config)
    return model, processor


def save_checkpoint(model: Any, processor: Any, folder: Path, weights: str = "safetensors") -> Path:
    """The released layout: config.json naming its CLIP encoder by `image_encoder` (here a
    folder beside it), weights as `safetensors`, one pickled `bin` or `sharded-bin` + index,
    the tokenizer files and preprocessor_config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    vision = config.pop("vision_config")
    (folder / ENCODER_FOLDER).mkdir(exist_ok=True)
    (folder / ENCODER_FOLDER / "config.json").write_text(json.dumps(vision, indent=2) + "\n", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if weights == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    elif weights == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    elif weights == "sharded-bin":
        keys = sorted(state)
        shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
        weight_map = {}
        for i, shard in enumerate(shards, start=1):
            name = f"pytorch_model-{i:05d}-of-{len(shards):05d}.bin"
            torch.save({k: state[k] for k in shard}, folder / name)
            weight_map.update({k: name for k in shard})
        index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())}, "weight_map": weight_map}
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"unknown weights format {weights!r}")
    processor.save_pretrained(folder)
    return folder


def cache_root() -> Path:
    env = os.environ.get("MEDHARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "medharness"


def tiny_checkpoint(generation: int) -> Path:
    """The tiny checkpoint folder for `generation`, built on first use (atomically)."""
    if generation not in TINY_VISION:
        raise ValueError(f"no tiny Dragonfly of generation {generation}; use 1 or 2")
    folder = cache_root() / f"dragonfly-tiny-gen{generation}-v{TINY_VERSION}"
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    model, processor = build_tiny(generation)
    save_checkpoint(model, processor, staging)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(staging, ignore_errors=True)
    return folder
