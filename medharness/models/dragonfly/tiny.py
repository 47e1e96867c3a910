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
from typing import Any, Optional

import torch

from medharness.models.dragonfly.configuration import DragonflyConfig
from medharness.models.dragonfly.image_processing import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, DragonflyImageProcessor

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
TINY_VERSION = 2  # bump when the recipe changes, so cached folders are rebuilt

# Toy widths; the grids keep the real structure (gen 2's patch grid pools 4x4). Gen 1 keeps the
# released 224 px / patch 32 geometry, since a released config names the generation only
# through its encoder's image size.
TINY_VISION = {
    1: dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224, patch_size=32),
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
        image_encoder=ENCODER_FOLDER,
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


# What the reference's DragonflyConfig writes into config.json besides text_config: its own
# copies of the Llama sizes, leftovers of an encoder-free variant, and PretrainedConfig's keys.
RELEASED_TOP_LEVEL = (
    "vocab_size", "max_position_embeddings", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "hidden_act", "initializer_range", "rms_norm_eps",
    "use_cache", "rope_theta", "attention_dropout", "bos_token_id", "eos_token_id", "pad_token_id",
    "tie_word_embeddings",
)


def released_config(config: DragonflyConfig, dtype: torch.dtype) -> dict:
    """config.json as a released checkpoint has it: no vision_config, generation, selection
    ratio or token ids of ours."""
    text = config.text_config.to_dict()
    out: dict[str, Any] = {"architectures": ["DragonflyForCausalLM"], "model_type": "dragonfly"}
    out.update({key: text.get(key, text.get("rope_parameters", {}).get(key)) for key in RELEASED_TOP_LEVEL})
    out.update({
        "image_encoder": config.image_encoder, "image_size": 300, "patch_size": 30, "num_channels": 3,
        "rope_scaling": None, "text_pretrained_model_name_or_path": "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "text_config": text, "torch_dtype": str(dtype).removeprefix("torch."), "transformers_version": "4.45.2",
    })
    return out


def legacy_preprocessor_config(image_size: int) -> dict:
    """The CLIP feature-extractor config the released checkpoints and CLIP folders ship."""
    return {
        "crop_size": image_size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": list(OPENAI_CLIP_MEAN),
        "image_std": list(OPENAI_CLIP_STD), "resample": 3, "size": image_size,
    }


def clip_folder_config(vision: dict) -> dict:
    """The encoder folder's config.json: a whole CLIPConfig, as the hub's openai/clip-* have."""
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": vision.get("projection_dim", 512),
            "vision_config": vision, "text_config": {"model_type": "clip_text_model"}}


def save_checkpoint(
    model: Any, processor: Any, folder: Path, weights: str = "safetensors", dtype: Optional[torch.dtype] = None,
) -> Path:
    """The released layout: config.json naming its CLIP encoder by `image_encoder` (here a
    folder beside it, with its own config and legacy preprocessor config), weights as
    `safetensors`, one pickled `bin` or `sharded-bin` + index (in `dtype`, default the
    model's), the tokenizer files and a legacy preprocessor_config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dtype = dtype or model.dtype
    se = model.config.vision_config.image_size
    encoder = folder / ENCODER_FOLDER
    encoder.mkdir(exist_ok=True)
    write_json(encoder / "config.json", clip_folder_config(model.config.vision_config.to_dict()))
    write_json(encoder / "preprocessor_config.json", legacy_preprocessor_config(se))
    write_json(folder / "config.json", released_config(model.config, dtype))
    write_json(folder / "preprocessor_config.json", legacy_preprocessor_config(se))
    state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
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
        total = sum(v.numel() * v.element_size() for v in state.values())
        write_json(folder / "pytorch_model.bin.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    else:
        raise ValueError(f"unknown weights format {weights!r}")
    processor.tokenizer.save_pretrained(str(folder))
    return folder


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


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
