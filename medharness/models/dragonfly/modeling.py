"""DragonflyForCausalLM: a CLIP vision tower, one linear projection, a Llama causal LM.

The image is encoded once, at prefill; decoding then runs on the LLM's KV cache (transformers'
`generate` drops `pixel_values` after the first step). The number of high-resolution crops kept
for each image is read from its image span, so the processor's selection ratio is the one used.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel, GenerationMixin, LlamaForCausalLM, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from medharness.models.dragonfly.configuration import ALL_LEVELS, GENERATIONS, POOL, REGIONS, CropPlan, DragonflyConfig, crop_plan


def select_high_crops(
    queries: torch.Tensor, regions: torch.Tensor, kept: int, region_of: Optional[torch.Tensor] = None,
    scores: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Zoom-in selection: sorted indices of the `kept` high crops to keep.

    queries [N, H]: each high crop's mean projected token; regions [4, H]: each medium crop's.
    `region_of` [N] names the medium crop each high crop competes for (default: blocks of N/4
    consecutive raster indices, as the released gen-1 code does). A crop's score is the dot
    product of its query with its region's vector, or `scores` [N] when given (the random and
    first ablations). Each region keeps its kept // 4 best; the kept % 4 remaining places go
    to the best-scoring of the rest.
    """
    n = queries.shape[0]
    if region_of is None:
        region_of = torch.arange(n, device=queries.device) // (n // REGIONS)
    members = torch.stack([torch.nonzero(region_of == m).squeeze(-1) for m in range(REGIONS)])  # [4, N/4] ascending
    per_region, extra = divmod(kept, REGIONS)
    if scores is None:
        # All queries against each region, one product per region, as the released code scores
        # them (the same kernel on the same shapes gives the same bits in bf16).
        every = torch.stack([torch.matmul(queries, regions[m].unsqueeze(-1)).squeeze(-1) for m in range(REGIONS)])
        block_scores = torch.gather(every, 1, members)  # [4, N/4]
    else:
        block_scores = scores.to(queries.device)[members]
    chosen = torch.zeros_like(block_scores, dtype=torch.bool)
    if per_region:
        chosen.scatter_(1, torch.topk(block_scores, per_region, dim=1).indices, True)
    if extra:
        rest = block_scores.float().masked_fill(chosen, float("-inf")).flatten()
        chosen.view(-1)[torch.topk(rest, extra).indices] = True
    return torch.sort(members[chosen]).values  # raster order


def spatial_regions(rows: int, cols: int) -> torch.Tensor:
    """[rows * cols]: the medium crop that spatially contains each high crop of a gen-2 grid
    (the high canvas is 3x the medium one, so each medium crop holds a 3x3 block)."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return ((r // 3) * (cols // 3) + c // 3).flatten()


def ablation_scores(selection: str, n: int, seed: Optional[int]) -> Optional[torch.Tensor]:
    """Scores replacing the similarity for the random and first ablations (None: similarity)."""
    if selection == "first":
        return -torch.arange(n, dtype=torch.float32)  # earliest raster crops win
    if selection == "random":
        if seed is None:
            raise ValueError("selection 'random' needs selection_seeds, one per image")
        return torch.rand(n, generator=torch.Generator().manual_seed(seed))  # on the CPU: same on every device
    return None


def pool_crops(crops: torch.Tensor) -> torch.Tensor:
    """[n, 1 + g*g, H] -> [n, 1 + (g/4)^2, H]: CLS, then the 4x4 mean-pooled grid, with the
    released code's exact sequence of views (the pooling kernel sees the same strides)."""
    n, tokens, hidden = crops.shape
    grid = int(round((tokens - 1) ** 0.5))
    cls, patches = crops[:, :1, :], crops[:, 1:, :]
    pooled = F.avg_pool2d(patches.view(n, grid, grid, -1).permute(0, 3, 1, 2), kernel_size=POOL, stride=POOL)
    pooled = pooled.permute(0, 2, 3, 1).reshape(n, -1, hidden)
    return torch.cat([cls, pooled], dim=1)


def image_embeddings(
    projected: torch.Tensor, generation: int, plan: CropPlan, seed: Optional[int] = None,
    grid: Optional[tuple[int, int]] = None,
) -> torch.Tensor:
    """One image's projected crops [1 + 4 + N, T, H] -> its visual embeddings [tokens, H]."""
    hidden = projected.shape[-1]
    low = projected[0].reshape(-1, hidden)
    if plan.levels == "low":
        return low
    rest = projected[1:5]
    if plan.levels == ALL_LEVELS:
        high = projected[5:]
        if plan.kept < high.shape[0]:
            region_of = None  # gen 1: the released blocks of consecutive raster crops
            if generation == 2:
                if grid is None or min(grid) < 0:
                    raise ValueError("gen-2 selection needs each image's high-crop grid (image_grids); build inputs with DragonflyProcessor")
                region_of = spatial_regions(*grid).to(projected.device)
            scores = ablation_scores(plan.selection, high.shape[0], seed)
            index = select_high_crops(high.mean(1), projected[1:5].mean(1), plan.kept, region_of, scores)
            high = high.index_select(0, index)
        rest = torch.cat([rest, high])
    if GENERATIONS[generation]["pool"]:
        rest = pool_crops(rest)
    return torch.cat([low, rest.reshape(-1, hidden)])


def round_rotary_to_bf16(model: nn.Module) -> int:
    """Round every rotary `inv_freq` buffer to bf16 (kept as fp32 values), returning how many.

    The reference's bf16 path is fp32 loading then `model.to(torch.bfloat16)`, which on
    transformers 4.45 also casts this buffer; the forward upcasts it again, so the rounded
    frequencies are what its bf16 answers (and the published numbers) were computed with.
    """
    count = 0
    for module in model.modules():
        if isinstance(getattr(module, "inv_freq", None), torch.Tensor):
            rounded = module.inv_freq.to(torch.bfloat16).float()
            module.inv_freq = rounded
            if isinstance(getattr(module, "original_inv_freq", None), torch.Tensor):
                module.original_inv_freq = rounded.clone()  # dynamic RoPE resets to this
            count += 1
    return count


class DragonflyPreTrainedModel(PreTrainedModel):
    config: DragonflyConfig
    config_class = DragonflyConfig
    base_model_prefix = ""
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "CLIPEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "vision_embed_tokens", None):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)


class DragonflyForCausalLM(DragonflyPreTrainedModel, GenerationMixin):
    def __init__(self, config: DragonflyConfig) -> None:
        super().__init__(config)
        if config.vision_config is None:
            raise ValueError("DragonflyConfig has no vision_config; load it with DragonflyConfig.from_pretrained(folder)")
        self.language_model = LlamaForCausalLM(config.text_config)
        self.image_encoder = CLIPVisionModel(config.vision_config)
        self.vision_embed_tokens = nn.Linear(config.vision_config.hidden_size, config.text_config.hidden_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    @property
    def placeholder_id(self) -> int:
        if self.config.image_placeholder_id is None:
            raise ValueError(
                "the config has no image_placeholder_id; load it with from_pretrained(folder) from a folder with the "
                "tokenizer files, or set config.image_placeholder_id to the tokenizer's id of "
                f"{self.config.image_placeholder_token}"
            )
        return self.config.image_placeholder_id

    def encode_crops(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[images, crops, 3, se, se] -> projected penultimate CLIP states [images, crops, T, H].
        All crops of all images go through the encoder together."""
        images, crops = pixel_values.shape[:2]
        dtype = self.vision_embed_tokens.weight.dtype
        flat = pixel_values.reshape(images * crops, *pixel_values.shape[2:]).to(dtype)
        projected = self.vision_embed_tokens(self.penultimate_states(flat).to(dtype))
        return projected.view(images, crops, *projected.shape[1:])

    def penultimate_states(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP's `hidden_states[-2]` (the features Dragonfly uses), computed by running the
        tower up to that layer only: the last layer and the list of every layer's states that
        `output_hidden_states=True` keeps are never made. Same operations, same bits."""
        encoder = self.image_encoder
        hidden = encoder.pre_layrnorm(encoder.embeddings(pixels))
        for layer in encoder.encoder.layers[:-1]:
            hidden = layer(hidden, None)
        return hidden

    def span_layout(self, placeholders: int) -> tuple[str, int]:
        """(levels, kept high crops) of an image span with `placeholders` positions."""
        generation = self.config.dragonfly_generation
        vision = self.config.vision_config
        grid = vision.image_size // vision.patch_size
        full = grid * grid + 1
        other = (grid // POOL) ** 2 + 1 if GENERATIONS[generation]["pool"] else full
        blocks, remainder = divmod(placeholders - full, other)
        if remainder == 0 and blocks == 0:
            return "low", 0
        if remainder == 0 and blocks == 4:
            return "low+medium", 0
        kept = blocks - 4
        if remainder or not 0 < kept <= GENERATIONS[generation]["high_crops"]:
            raise ValueError(f"an image span of {placeholders} placeholders fits no Dragonfly layout; build inputs with DragonflyProcessor")
        return ALL_LEVELS, kept

    def splice_images(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, pixel_values: torch.Tensor,
        selection_ratio: Optional[float], selection: Optional[str] = None, levels: Optional[str] = None,
        selection_seeds: Optional[list[int]] = None, image_grids: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Overwrite the placeholder positions with the visual embeddings, row by row."""
        is_placeholder = input_ids == self.placeholder_id
        counts = is_placeholder.sum(1)
        rows = torch.nonzero(counts).squeeze(-1).tolist()
        if len(rows) != pixel_values.shape[0]:
            raise ValueError(f"{pixel_values.shape[0]} images for {len(rows)} rows with an image span")
        generation = self.config.dragonfly_generation
        asked = crop_plan(generation, selection_ratio, selection, levels) if (selection_ratio, selection, levels) != (None, None, None) else None
        projected = self.encode_crops(pixel_values)
        grids = image_grids.tolist() if image_grids is not None else [None] * len(rows)
        features = []
        for image, row in enumerate(rows):
            span_levels, kept = self.span_layout(int(counts[row]))
            if asked is not None and (asked.levels, asked.kept) != (span_levels, kept):
                raise ValueError(
                    f"inputs were built for levels {span_levels} with {kept} high crops, not selection_ratio={selection_ratio}, "
                    f"levels={levels}; pass the same settings to the processor"
                )
            total = GENERATIONS[generation]["high_crops"]
            plan = asked or CropPlan(span_levels, "similarity" if 0 < kept < total else "none", kept)
            seed = selection_seeds[image] if selection_seeds is not None else None
            features.append(image_embeddings(projected[image], generation, plan, seed, grids[image]))
        features = torch.cat(features).to(inputs_embeds.dtype)
        if features.shape[0] != int(counts.sum()):  # masked_scatter drops a surplus silently
            raise ValueError(f"{features.shape[0]} visual features for {int(counts.sum())} image placeholders")
        return inputs_embeds.masked_scatter(is_placeholder.unsqueeze(-1), features)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        cache: Optional[Any] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        pixel_values: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        use_cache: Optional[bool] = None,
        logits_to_keep: int | torch.Tensor = 0,
        selection_ratio: Optional[float] = None,
        selection: Optional[str] = None,
        levels: Optional[str] = None,
        selection_seeds: Optional[list[int]] = None,
        image_grids: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            if pixel_values is not None:
                inputs_embeds = self.splice_images(
                    input_ids, inputs_embeds, pixel_values, selection_ratio, selection, levels, selection_seeds, image_grids,
                )
        if position_ids is None and attention_mask is not None:
            # Left padding: every row counts positions from its first real token, as generate does.
            positions = attention_mask.long().cumsum(-1) - 1
            position_ids = positions.masked_fill(attention_mask == 0, 0)[:, -inputs_embeds.shape[1] :]
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
            cache=cache, labels=labels, use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs,
        )
