"""What one Dragonfly sample costs: analytical FLOPs (formulas in docs/dragonfly.md) and the
seconds of each stage of the batch it ran in.

FLOPs are the matrix products torch's FlopCounterMode counts (2 per multiply-add: linear
layers, the patch convolution, attention's two products over the full square, the selection
scores), so the formulas can be checked against it; norms, softmax and pooling are left out.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from medharness.models.dragonfly.configuration import CropPlan


def vision_flops(vision: Any, crops: int) -> int:
    """CLIP over `crops` crops, up to the penultimate layer (the one Dragonfly uses)."""
    d, i, p = vision.hidden_size, vision.intermediate_size, vision.patch_size
    tokens = (vision.image_size // p) ** 2 + 1
    patch = 2 * (tokens - 1) * 3 * p * p * d
    layer = 2 * tokens * (4 * d * d + 2 * d * i) + 2 * 2 * tokens * tokens * d
    return crops * (patch + (vision.num_hidden_layers - 1) * layer)


def projector_flops(vision: Any, text: Any, crops: int, plan: CropPlan) -> int:
    """The linear projection of every token of every crop, plus the selection scores (each high
    crop's query against the 4 medium crops) when some high crops are dropped."""
    tokens = (vision.image_size // vision.patch_size) ** 2 + 1
    scores = 4 * 2 * (crops - 5) * text.hidden_size if plan.selection == "similarity" else 0
    return 2 * crops * tokens * vision.hidden_size * text.hidden_size + scores


def llm_dense_flops(text: Any) -> int:
    """Per token: the attention projections (grouped KV) and the gated MLP of every layer."""
    d = text.hidden_size
    kv = text.num_key_value_heads * (d // text.num_attention_heads)
    return text.num_hidden_layers * 2 * (2 * d * d + 2 * d * kv + 3 * d * text.intermediate_size)


def prefill_flops(text: Any, tokens: int) -> int:
    """The LLM over `tokens` positions (attention over the full square), logits for the last only."""
    attention = text.num_hidden_layers * 2 * 2 * tokens * tokens * text.hidden_size
    return tokens * llm_dense_flops(text) + attention + 2 * text.hidden_size * text.vocab_size


def decode_flops(text: Any, prefill_tokens: int, generated: int) -> int:
    """The generated tokens after the first (which prefill yields), each over its context."""
    total = 0
    for step in range(1, generated):
        context = prefill_tokens + step
        total += llm_dense_flops(text) + text.num_hidden_layers * 2 * 2 * context * text.hidden_size
        total += 2 * text.hidden_size * text.vocab_size
    return total


def sample_flops(config: Any, plan: CropPlan, crops: int, prefill_tokens: int, generated: int) -> dict[str, int]:
    """The FLOP keys of `Prediction.extra["cost"]` for one sample (crops = 0 without an image)."""
    vision, text = config.vision_config, config.text_config
    parts = {
        "flops_vision": vision_flops(vision, crops) if crops else 0,
        "flops_projector": projector_flops(vision, text, crops, plan) if crops else 0,
        "flops_prefill": prefill_flops(text, prefill_tokens),
        "flops_decode": decode_flops(text, prefill_tokens, generated),
    }
    return {"flops": sum(parts.values()), **parts}


class StageClock:
    """Seconds of a batch's stages, from hooks on the model: encode (CLIP + projection), prefill
    (the first forward, less encode) and decode (the forwards after it). On CUDA each mark
    synchronises, so the seconds are the device's."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model, self.cuda = model, getattr(device, "type", "cpu") == "cuda"
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        self.marks.append((name, time.perf_counter()))

    @contextmanager
    def recording(self) -> Iterator["StageClock"]:
        self.marks = []
        handles = [
            self.model.image_encoder.embeddings.register_forward_pre_hook(lambda *a: self.mark("encode_start")),
            self.model.vision_embed_tokens.register_forward_hook(lambda *a: self.mark("encode_end")),
            self.model.register_forward_pre_hook(lambda *a: self.mark("forward_start")),
            self.model.register_forward_hook(lambda *a: self.mark("forward_end")),
        ]
        self.mark("start")
        try:
            yield self
        finally:
            self.mark("end")
            for handle in handles:
                handle.remove()

    def seconds(self) -> dict[str, float]:
        times: dict[str, list[float]] = {}
        for name, at in self.marks:
            times.setdefault(name, []).append(at)
        first = times["forward_end"][0] - times["forward_start"][0]
        encode = times["encode_end"][0] - times["encode_start"][0] if "encode_start" in times else 0.0
        return {"encode_s": encode, "prefill_s": first - encode, "decode_s": times["end"][0] - times["forward_end"][0]}
