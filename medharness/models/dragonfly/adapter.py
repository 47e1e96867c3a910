"""The `dragonfly` model adapter: requests -> DragonflyForCausalLM greedy answers + accounting.

Import-light on purpose (the registry imports this module to list adapters): torch and
transformers are imported when an adapter is built.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Literal, Optional

from pydantic import Field

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.models.base import ModelAdapter, cut_at_stop
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Request


class DragonflyOptions(CardOptions):
    tiny: Optional[Literal["gen1", "gen2"]] = None  # a tiny random-weight build instead of `weights`
    attn_implementation: str = "sdpa"
    # bfloat16 = the reference's bf16 numerics (inv_freq rounded as transformers 4.45's .to(bf16)
    # does); applies to bf16 runs only
    rotary_dtype: Literal["bfloat16", "float32"] = "float32"
    preprocess_workers: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1)  # threads preparing images ahead of the model


class DragonflyAdapter(ModelAdapter):
    """Card: `weights` (hub id or folder) or `options.tiny: gen1|gen2`; `dtype`/`device`
    (auto = bf16 on CUDA, fp32 on CPU); options as DragonflyOptions declares them."""

    Options = DragonflyOptions

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        from medharness.models.dragonfly import loading
        from medharness.models.dragonfly.prefetch import ImagePrefetcher
        from medharness.models.devices import device_and_dtype

        self.folder = loading.checkpoint_folder(card)
        self.weights_id = loading.weights_identity(self.folder)
        self.device, self.dtype = device_and_dtype(card)
        self.model, self.processor = loading.load(self.folder, self.device, self.dtype, self.options.attn_implementation, self.options.rotary_dtype)
        self.prefetcher = ImagePrefetcher(self.processor.image_processor, self.options.preprocess_workers, canvases_only=self.device.type != "cpu")

    def fingerprint_parts(self) -> dict:
        parts = super().fingerprint_parts()
        parts["weights_identity"] = self.weights_id
        parts["dtype"] = str(self.dtype)
        return parts

    def effective_ratio(self, requested: Optional[float]) -> float:
        """The ratio actually used: the request's, else the generation's default (gen 2's
        released model keeps every high crop, i.e. 1.0)."""
        kept = self.processor.kept_high(requested)
        from medharness.models.dragonfly.configuration import GENERATIONS

        return kept / GENERATIONS[self.processor.generation]["high_crops"]

    def prefetch(self, requests: list[Request]) -> None:
        """Start preparing these requests' images now (call with the NEXT batch while the
        current one runs)."""
        self.prefetcher.submit(requests)

    def generate(self, requests: list[Request]) -> list[Prediction]:
        self.prefetch(requests)
        out: dict[str, Prediction] = {}
        groups: dict[tuple, list[Request]] = {}
        for request in requests:
            settings = request.generation
            if settings.temperature > 0:
                raise UserError("the dragonfly adapter decodes greedily, as the released models do; set temperature: 0")
            key = (settings.selection_ratio, settings.selection, settings.levels, settings.seed, settings.max_new_tokens)
            groups.setdefault(key, []).append(request)
        for group in groups.values():
            out.update(self._generate_group(group))
        return [out[r.sample_id] for r in requests]

    def _generate_group(self, requests: list[Request]) -> dict[str, Prediction]:
        """Requests sharing their settings: one padded batch through `generate`."""
        import torch

        from medharness.models.dragonfly.cost import StageClock, sample_flops
        from medharness.models.dragonfly.processing import format_prompt

        settings = requests[0].generation
        ratio, selection, levels = settings.selection_ratio, settings.selection, settings.levels
        plan = self.processor.plan(ratio, selection, levels)
        started = time.perf_counter()
        effective = self.effective_ratio(ratio)
        base_extra = {"selection_ratio": effective, "selection": plan.selection, "levels": plan.levels,
                      "generation": self.processor.generation}
        if self.card.random_weights:
            base_extra["random_weights"] = True
        prepared = [(r, self.prefetcher.get(r)) for r in requests]
        out = {r.sample_id: Prediction(sample_id=r.sample_id, error=p.error, extra={**base_extra, **p.extra})
               for r, p in prepared if p.error}
        ready = [(r, p) for r, p in prepared if not p.error]
        if not ready:
            return out
        images = [to_device(p.pixels, self.device) for _, p in ready]
        inputs = self.processor([format_prompt(r.prompt) for r, _ in ready], images, selection_ratio=ratio,
                                levels=levels, selection=selection, high_grids=[p.grid for _, p in ready])
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        seeds = [selection_seed(settings.seed, r.sample_id) for r, p in ready if p.pixels is not None]
        preprocess_s = time.perf_counter() - started
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        clock = StageClock(self.model, self.device)
        with torch.inference_mode(), clock.recording():
            sequences = self.model.generate(
                **inputs, max_new_tokens=settings.max_new_tokens, do_sample=False, selection_ratio=ratio,
                selection=selection, levels=levels, selection_seeds=seeds,
                eos_token_id=[self.processor.stop_id, self.processor.tokenizer.eos_token_id],
                pad_token_id=self.processor.pad_id,
            )
        new = sequences[:, inputs["input_ids"].shape[1] :].cpu()
        seconds = (time.perf_counter() - started) / len(ready)
        batch_cost: dict[str, Any] = {"batch_size": len(ready), "preprocess_s": round(preprocess_s, 4),
                                      **{k: round(v, 4) for k, v in clock.seconds().items()}}
        if self.device.type == "cuda":
            batch_cost["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        visual = self.processor.visual_tokens(ratio, levels, selection)
        stops = {self.processor.stop_id, self.processor.tokenizer.eos_token_id}
        for row, (request, prep) in enumerate(ready):
            tokens = new[row].tolist()
            ended = next((i for i, t in enumerate(tokens) if t in stops), len(tokens))
            text = self.processor.decode(tokens[:ended], skip_special_tokens=True)
            input_tokens = int(inputs["attention_mask"][row].sum())
            crops = self.processor.image_processor.num_crops if prep.pixels is not None else 0
            flops = sample_flops(self.model.config, plan, crops, input_tokens, min(ended + 1, len(tokens)))
            out[request.sample_id] = Prediction(
                sample_id=request.sample_id, text=cut_at_stop(text, request.generation.stop),
                input_tokens=input_tokens, visual_tokens=visual if prep.pixels is not None else 0,
                output_tokens=ended, seconds=round(seconds, 4),
                extra={**base_extra, **prep.extra, "cost": {**flops, **batch_cost}},
            )
        return out

    def close(self) -> None:
        self.prefetcher.close()


def selection_seed(seed: Optional[int], sample_id: str) -> int:
    """The random selection's seed for one sample: from --seed and the sample id only, so a
    rerun, another batch size or another GPU count draws the same crops."""
    digest = hashlib.sha256(f"{seed or 0}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def to_device(pixels: Any, device: Any) -> Any:
    """Float crops, or uint8 canvases (a list) moved to the device as tensors; None stays."""
    from medharness.models.dragonfly.image_processing import canvas_tensors

    if isinstance(pixels, list):
        return canvas_tensors(pixels, device)
    return None if pixels is None else pixels.to(device)


ADAPTERS.register("dragonfly", DragonflyAdapter)
