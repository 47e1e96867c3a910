"""DragonflyProcessor: prompt + image -> input_ids (image span first), attention_mask, pixel_values.

Layout for generation: `[image span][<|begin_of_text|>][prompt tokens]`, one block per kept
crop (low, medium, high), each block = one placeholder per visual embedding + one separator.
Batches are padded on the LEFT with the EOS id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from PIL import Image

from medharness.models.dragonfly.configuration import ALL_LEVELS, GENERATIONS, POOL, CropPlan, DragonflyConfig, crop_plan, register
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, canvas_sizes

PROMPT_TEMPLATE = (
    "<|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
STOP_TOKEN = "<|eot_id|>"
# The released processor keeps at most max_length / 2 - 1 prompt tokens (max_length 2048).
MAX_PROMPT_TOKENS = 1023


def tokens_per_crop(image_size: int, patch_size: int) -> int:
    return (image_size // patch_size) ** 2 + 1  # CLS + patch grid


def block_sizes(generation: int, image_size: int, patch_size: int, kept_high: int, levels: str = ALL_LEVELS) -> list[int]:
    """Visual embeddings per block: low crop, 4 medium crops (unless levels is low), the kept high crops."""
    full = tokens_per_crop(image_size, patch_size)
    grid = image_size // patch_size
    other = (grid // POOL) ** 2 + 1 if GENERATIONS[generation]["pool"] else full
    if levels == "low":
        return [full]
    return [full] + [other] * (4 + (kept_high if levels == ALL_LEVELS else 0))


def image_span(sizes: Sequence[int], placeholder_id: int, separator_id: int) -> list[int]:
    span: list[int] = []
    for size in sizes:
        span.extend([placeholder_id] * size + [separator_id])
    return span


def format_prompt(question: str) -> str:
    return PROMPT_TEMPLATE.format(question=question)


class DragonflyProcessor:
    """Tokenizer + DragonflyImageProcessor, with the model's layout facts."""

    def __init__(self, tokenizer: Any, image_processor: DragonflyImageProcessor, config: DragonflyConfig) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        self.generation = config.dragonfly_generation
        self.patch_size = config.vision_config.patch_size
        if image_processor.image_size != config.vision_config.image_size:
            raise ValueError(
                f"preprocessor crop size {image_processor.image_size} differs from the encoder's "
                f"{config.vision_config.image_size}"
            )
        self.placeholder_id = self._token_id(config.image_placeholder_token)
        if config.image_placeholder_id is not None and self.placeholder_id != config.image_placeholder_id:
            raise ValueError(f"tokenizer maps {config.image_placeholder_token} to {self.placeholder_id}, config says {config.image_placeholder_id}")
        self.separator_id = self._token_id(config.image_separator_token)
        self.stop_id = self._token_id(STOP_TOKEN)
        self.pad_id = tokenizer.eos_token_id

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {token!r} token; is this a Llama-3 tokenizer?")
        return token_id

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs: Any) -> "DragonflyProcessor":
        from transformers import AutoTokenizer

        folder = Path(folder)
        register()  # AutoTokenizer reads config.json and must know model_type "dragonfly"
        config = DragonflyConfig.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        data = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
        return cls(tokenizer, DragonflyImageProcessor.from_preprocessor_config(data, config.dragonfly_generation), config)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))
        text = json.dumps(self.image_processor.preprocessor_config(), indent=2)
        (folder / "preprocessor_config.json").write_text(text + "\n", encoding="utf-8")

    def plan(self, selection_ratio: Optional[float] = None, selection: Optional[str] = None, levels: Optional[str] = None) -> CropPlan:
        ratio = self.config.selection_ratio if selection_ratio is None else selection_ratio
        return crop_plan(self.generation, ratio, selection, levels)

    def kept_high(self, selection_ratio: Optional[float]) -> int:
        return self.plan(selection_ratio).kept

    def block_sizes(self, plan: CropPlan) -> list[int]:
        return block_sizes(self.generation, self.image_processor.image_size, self.patch_size, plan.kept, plan.levels)

    def visual_tokens(self, selection_ratio: Optional[float] = None, levels: Optional[str] = None, selection: Optional[str] = None) -> int:
        """Visual embeddings one image puts into the LLM (separators not counted)."""
        return sum(self.block_sizes(self.plan(selection_ratio, selection, levels)))

    def span_ids(self, selection_ratio: Optional[float] = None, levels: Optional[str] = None, selection: Optional[str] = None) -> list[int]:
        return image_span(self.block_sizes(self.plan(selection_ratio, selection, levels)), self.placeholder_id, self.separator_id)

    def high_grid(self, image: Any) -> Optional[tuple[int, int]]:
        """(rows, cols) of an image's high-crop grid: from a PIL image's size or the high canvas;
        None for crops made elsewhere."""
        se = self.image_processor.image_size
        if isinstance(image, Image.Image):
            width, height = canvas_sizes(image.size, se, self.generation)[1]
            return height // se, width // se
        if isinstance(image, (list, tuple)) and len(image) == 3:  # the low, medium and high canvases
            return image[2].shape[0] // se, image[2].shape[1] // se
        if isinstance(image, (list, tuple)) and len(image) == 1:  # the RGB image, canvases made on the device
            height, width = image[0].shape[:2]
            width, height = canvas_sizes((width, height), se, self.generation)[1]
            return height // se, width // se
        return None

    def prompt_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"][:MAX_PROMPT_TOKENS]

    def __call__(
        self,
        text: str | Sequence[str],
        images: Optional[Sequence[Optional[Image.Image | torch.Tensor | list[torch.Tensor]]]] = None,
        selection_ratio: Optional[float] = None,
        return_tensors: str = "pt",
        levels: Optional[str] = None,
        selection: Optional[str] = None,
        high_grids: Optional[Sequence[Optional[tuple[int, int]]]] = None,
    ) -> dict[str, torch.Tensor]:
        """`images[i]` belongs to `text[i]`: a PIL image, float crops already made by
        `image_processor`, its uint8 `canvas_arrays` as tensors (on any device: cut and
        normalised there), or None for a text-only row. `high_grids` gives the (rows, cols)
        high-crop grid of float crops (needed by gen 2's selection extension); `image_grids`
        in the output holds them, (-1, -1) where unknown."""
        texts = [text] if isinstance(text, str) else list(text)
        images = list(images) if images is not None else [None] * len(texts)
        if len(images) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(images)} images; give one image (or None) per text")
        span = self.span_ids(selection_ratio, levels, selection)
        rows = [(span if image is not None else []) + self.prompt_ids(t) for t, image in zip(texts, images)]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, width - len(row) :] = 1
        out = {"input_ids": input_ids, "attention_mask": attention_mask}
        present = [i for i, image in enumerate(images) if image is not None]
        if present:
            out["pixel_values"] = torch.stack([self.pixel_values(images[i]) for i in present])
            grids = [self.high_grid(images[i]) or (high_grids[i] if high_grids else None) for i in present]
            out["image_grids"] = torch.tensor([g or (-1, -1) for g in grids], dtype=torch.long)
        return out

    def pixel_values(self, image: Image.Image | torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(image, Image.Image):
            return self.image_processor(image)
        if isinstance(image, (list, tuple)):
            return self.image_processor.expand(image)
        return image

    def batch_decode(self, sequences: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(sequences, **kwargs)

    def decode(self, sequence: Any, **kwargs: Any) -> str:
        return self.tokenizer.decode(sequence, **kwargs)
