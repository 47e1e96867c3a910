"""DragonflyConfig: one model class, two generations (see docs/dragonfly.md).

A released config.json names its CLIP encoder only by `image_encoder` (a hub id or a path);
the encoder's weights live in the checkpoint, so its architecture is all we need. For the two
released encoder ids it is fixed here, so loading needs no download; a local path (absolute
or relative to the checkpoint folder) is read from that folder's config.json.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from transformers import AutoConfig, CLIPVisionConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from medharness.errors import UserError

# The CLIP vision towers of the released checkpoints (from their hub config.json files).
KNOWN_ENCODERS: dict[str, dict[str, Any]] = {
    "openai/clip-vit-large-patch14-336": dict(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
    ),
    "openai/clip-vit-base-patch32": dict(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512,
    ),
}

# Per generation: high-resolution crop count, the default selection ratio (None = no selection)
# and whether medium/high crops are mean-pooled 4x4.
GENERATIONS: dict[int, dict[str, Any]] = {
    1: {"high_crops": 24, "default_ratio": 0.5, "pool": False},
    2: {"high_crops": 36, "default_ratio": None, "pool": True},
}
POOL = 4  # gen 2: kernel and stride of the mean pooling over the patch grid
REGIONS = 4  # medium crops; each owns a block of high_crops / 4 consecutive raster crops


def generation_of(image_size: int) -> int:
    """The released generations differ in encoder size: 224 px is gen 1, 336 px gen 2."""
    return 1 if image_size == 224 else 2


def kept_high_crops(generation: int, selection_ratio: Optional[float]) -> int:
    """How many high-resolution crops reach the LLM for this generation and ratio.

    None means the generation's released behaviour (gen 1: half, gen 2: all, unselected).
    """
    spec = GENERATIONS[generation]
    ratio = spec["default_ratio"] if selection_ratio is None else selection_ratio
    if ratio is None:
        return spec["high_crops"]
    if not 0 < ratio <= 1:
        raise UserError(f"selection ratio {ratio} is outside (0, 1]; pass a value such as 0.25, 0.5 or 1.0")
    # Nearest count, halves rounded up (Python's round() would send 4.5 to 4).
    return max(1, math.floor(ratio * spec["high_crops"] + 0.5))


SELECTIONS = ("similarity", "random", "first", "none")
LEVELS = ("low", "low+medium", "low+medium+high")
ALL_LEVELS = LEVELS[-1]


@dataclass(frozen=True)
class CropPlan:
    """What reaches the LLM: `levels`, `kept` high crops (0 without the high level) and how they
    were chosen (`selection`; "none" when every high crop is kept or none is used)."""

    levels: str
    selection: str
    kept: int


def crop_plan(
    generation: int, selection_ratio: Optional[float] = None, selection: Optional[str] = None,
    levels: Optional[str] = None,
) -> CropPlan:
    """The plan for these settings; None means the generation's released behaviour (gen 1:
    similarity selection of half the high crops, gen 2: every crop). Contradictory settings
    are refused, never ignored."""
    levels = levels or ALL_LEVELS
    if levels not in LEVELS:
        raise UserError(f"levels {levels!r} is not one of {', '.join(LEVELS)}")
    if selection is not None and selection not in SELECTIONS:
        raise UserError(f"selection {selection!r} is not one of {', '.join(SELECTIONS)}")
    total = GENERATIONS[generation]["high_crops"]
    if levels != ALL_LEVELS:
        if selection not in (None, "none") or selection_ratio is not None:
            raise UserError(f"levels {levels} uses no high-resolution crops, so a selection or selection ratio means nothing; drop it")
        return CropPlan(levels, "none", 0)
    if selection == "none":
        if selection_ratio is not None and selection_ratio != 1:
            raise UserError(f"selection none keeps every high crop; selection ratio {selection_ratio:g} contradicts it")
        return CropPlan(levels, "none", total)
    if selection is not None and selection_ratio is None and GENERATIONS[generation]["default_ratio"] is None:
        raise UserError(f"generation {generation} keeps every high crop unless a selection ratio is given; add --selection-ratio to --selection {selection}")
    kept = kept_high_crops(generation, selection_ratio)
    if kept == total:
        return CropPlan(levels, "none", total)
    return CropPlan(levels, selection or "similarity", kept)


def resolve_vision_config(image_encoder: Optional[str], checkpoint_dir: Optional[str] = None) -> CLIPVisionConfig:
    """The CLIP vision config for `image_encoder`, without a download when it can be avoided."""
    if not image_encoder:
        raise UserError("config.json has no `image_encoder` and no `vision_config`; this is not a Dragonfly checkpoint")
    if image_encoder in KNOWN_ENCODERS:
        return CLIPVisionConfig(**KNOWN_ENCODERS[image_encoder])
    candidates = [Path(image_encoder)]
    if checkpoint_dir and not os.path.isabs(image_encoder):
        candidates.insert(0, Path(checkpoint_dir) / image_encoder)
    for folder in candidates:
        if (folder / "config.json").is_file():
            return CLIPVisionConfig.from_pretrained(str(folder))
    try:  # a hub id other than the released ones: the local Hugging Face cache, else the hub
        return CLIPVisionConfig.from_pretrained(image_encoder)
    except OSError:
        raise UserError(
            f"cannot find the CLIP encoder config {image_encoder!r}: put its folder next to the checkpoint "
            "(config.json `image_encoder` may be a relative path) or download it while online"
        ) from None


class DragonflyConfig(PreTrainedConfig):
    """`text_config`: a Llama config. `vision_config`: the CLIP vision config, resolved from
    `image_encoder` when a released config.json lacks it. `dragonfly_generation`: 1 or 2,
    inferred from the encoder's image size when absent. `selection_ratio`: the default
    zoom-in selection ratio (None = the generation's released behaviour)."""

    model_type = "dragonfly"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "vision_config": SubConfigSpec(config_class=CLIPVisionConfig, optional=True),
    }

    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    image_encoder: str | None = None
    hidden_size: int | None = None
    dragonfly_generation: int | None = None
    selection_ratio: float | None = None
    image_placeholder_token: str = "<|reserved_special_token_0|>"
    image_separator_token: str = "<|reserved_special_token_1|>"
    # The id of image_placeholder_token. Released config.json files do not carry it: from_pretrained
    # reads it from the tokenizer files beside the config, as the reference does.
    image_placeholder_id: int | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.vision_config is None and self.image_encoder is not None and (
            self.image_encoder in KNOWN_ENCODERS or os.path.isabs(self.image_encoder)
        ):
            self.vision_config = resolve_vision_config(self.image_encoder)
        self.hidden_size = self.text_config.hidden_size
        if self.dragonfly_generation is None and self.vision_config is not None:
            self.dragonfly_generation = generation_of(self.vision_config.image_size)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Also resolves an `image_encoder` given relative to the checkpoint folder."""
        out = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        folder = str(pretrained_model_name_or_path) if os.path.isdir(pretrained_model_name_or_path) else None
        if config.image_placeholder_id is None and folder is not None:
            config.image_placeholder_id = token_id_in_folder(Path(folder), config.image_placeholder_token)
        if config.vision_config is None:
            config.vision_config = resolve_vision_config(config.image_encoder, folder)
            if config.dragonfly_generation is None:
                config.dragonfly_generation = generation_of(config.vision_config.image_size)
        return out


def token_id_in_folder(folder: Path, token: str) -> Optional[int]:
    """The id of a special token from the tokenizer files in `folder` (tokenizer.json's added
    tokens and vocabulary, else tokenizer_config.json's added_tokens_decoder), or None."""
    path = folder / "tokenizer.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        for added in data.get("added_tokens", []):
            if added.get("content") == token:
                return int(added["id"])
        vocab = (data.get("model") or {}).get("vocab")
        if isinstance(vocab, dict) and token in vocab:
            return int(vocab[token])
    path = folder / "tokenizer_config.json"
    if path.is_file():
        decoder = json.loads(path.read_text(encoding="utf-8")).get("added_tokens_decoder", {})
        for token_id, added in decoder.items():
            if added.get("content") == token:
                return int(token_id)
    return None


def register() -> None:
    """Let AutoConfig read `model_type: dragonfly` (idempotent)."""
    try:
        AutoConfig.register("dragonfly", DragonflyConfig)
    except ValueError:
        pass  # already registered
