"""`hf`: any vision-language model that transformers loads with AutoProcessor and
AutoModelForImageTextToText, prompted through the processor's chat template.

Batches are left-padded and decoded greedily by default, so a request's answer does not depend
on which other requests share its batch. torch and transformers are imported on construction
only: listing plugins must not pay for them.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any, Optional

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.images import ImageError, open_image
from medharness.models.base import ModelAdapter, cut_at_stop
from medharness.models.devices import device_and_dtype
from medharness.registry import ADAPTERS
from medharness.schema import GenerationSettings, ModelCard, Prediction, Request

DEFAULT_MODEL_CLASS = "AutoModelForImageTextToText"
# Tried when the checkpoint's config is not mapped by AutoModelForImageTextToText and the card
# names no model_class (some multimodal checkpoints register only as causal LMs).
FALLBACK_MODEL_CLASS = "AutoModelForCausalLM"

class HFOptions(CardOptions):
    """The `options:` an `hf` model card may set."""

    model_class: Optional[str] = None  # a transformers class name, e.g. LlavaForConditionalGeneration
    trust_remote_code: bool = False
    system_prompt: Optional[str] = None
    attn_implementation: Optional[str] = None


def resolve_weights(card: ModelCard) -> str:
    """The card's `weights`, with $VARIABLES expanded (for checkpoints each user converts or
    downloads to a folder of their own)."""
    if not card.weights:
        raise UserError(f"model card {card.name!r}: `weights:` is empty; set it to a Hugging Face "
                        "model id or a local folder")
    weights = os.path.expanduser(os.path.expandvars(card.weights))
    unset = re.findall(r"\$\{?(\w+)", weights)
    if unset:
        raise UserError(f"model card {card.name!r}: weights {card.weights!r} names an environment "
                        f"variable that is not set; set {unset[0]} to the checkpoint folder (see docs/adapters.md)")
    return weights


def weights_identity(weights: str, revision: Optional[str]) -> dict[str, Any]:
    """What pins the checkpoint: the hub commit it resolved to, or for a local folder a hash of
    its config and the sizes of its weight files (hashing gigabytes per run would be too slow)."""
    from transformers.utils import cached_file

    config_path = Path(cached_file(weights, "config.json", revision=revision))
    parts = config_path.parts
    if "snapshots" in parts:
        return {"hub_commit": parts[parts.index("snapshots") + 1]}
    folder = config_path.parent
    digest = hashlib.sha256(config_path.read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
    return {"local_folder_hash": digest.hexdigest()[:16]}


def load_pretrained(card: ModelCard, options: HFOptions, device: Any, dtype: Any) -> tuple[Any, Any]:
    """(processor, model) from the card's weights; offline without them is one clear line."""
    import transformers

    weights = resolve_weights(card)
    common = {"revision": card.revision, "trust_remote_code": options.trust_remote_code}
    try:
        processor = transformers.AutoProcessor.from_pretrained(weights, **common)
        model_kwargs: dict[str, Any] = {"dtype": dtype, **common}
        if options.attn_implementation:
            model_kwargs["attn_implementation"] = options.attn_implementation
        model = load_model_class(card, options, weights, model_kwargs)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        where = "offline (HF_HUB_OFFLINE=1)" if offline else "from the hub"
        raise UserError(
            f"model card {card.name!r}: cannot load weights {weights!r} {where}: "
            f"{str(exc).splitlines()[0]}; download them first (`hf download {weights}`) or point "
            "`weights:` at a local folder"
        ) from None
    model.to(device)
    model.eval()
    return processor, model


def load_model_class(card: ModelCard, options: HFOptions, weights: str, kwargs: dict) -> Any:
    import transformers

    if options.model_class:
        cls = getattr(transformers, options.model_class, None)
        if cls is None:
            raise UserError(f"model card {card.name!r}: transformers has no class "
                            f"{options.model_class!r} (option model_class)")
        return cls.from_pretrained(weights, **kwargs)
    try:
        return getattr(transformers, DEFAULT_MODEL_CLASS).from_pretrained(weights, **kwargs)
    except ValueError as exc:
        if "Unrecognized configuration class" not in str(exc):
            raise
        return getattr(transformers, FALLBACK_MODEL_CLASS).from_pretrained(weights, **kwargs)


class HFAdapter(ModelAdapter):
    """Chat-template prompting of a transformers image-text-to-text model."""

    Options = HFOptions

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        self.device, self.dtype = device_and_dtype(card)
        self.processor, self.model = load_pretrained(card, self.options, self.device, self.dtype)
        # Left padding keeps every prompt's last token at the end, where generation continues.
        self.processor.tokenizer.padding_side = "left"
        self.identity = weights_identity(resolve_weights(card), card.revision)

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "weights": self.identity, "dtype": str(self.dtype)}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        results: dict[int, Prediction] = {}
        ready: dict[str, list[tuple[int, Request, list]]] = {}
        for i, request in enumerate(requests):
            try:
                images = [open_image(ref) for ref in request.images]
            except ImageError as exc:
                results[i] = Prediction(sample_id=request.sample_id, error=str(exc))
                continue
            # Requests with different settings cannot share one generate() call.
            key = request.generation.model_dump_json()
            ready.setdefault(key, []).append((i, request, images))
        for group in ready.values():
            for (i, _, _), prediction in zip(group, self.generate_group(group)):
                results[i] = prediction
        return [results[i] for i in range(len(requests))]

    def generate_group(self, group: list[tuple[int, Request, list]]) -> list[Prediction]:
        """One generate() call; if it fails, each request alone, so that one bad request
        becomes that request's error instead of failing its neighbours."""
        try:
            return self.run_batch([(r, imgs) for _, r, imgs in group])
        except (ValueError, RuntimeError, IndexError) as exc:
            if len(group) == 1:
                request = group[0][1]
                return [Prediction(sample_id=request.sample_id,
                                   error=f"generation failed: {type(exc).__name__}: {exc}")]
            return [p for item in group for p in self.generate_group([item])]

    def conversation(self, request: Request, images: list) -> list[dict]:
        content: list[dict] = [{"type": "image", "image": img} for img in images]
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict] = []
        if self.options.system_prompt:
            messages.append({"role": "system",
                             "content": [{"type": "text", "text": self.options.system_prompt}]})
        messages.append({"role": "user", "content": content})
        return messages

    def run_batch(self, batch: list[tuple[Request, list]]) -> list[Prediction]:
        import torch

        settings = batch[0][0].generation
        start = time.perf_counter()
        inputs = self.processor.apply_chat_template(
            [self.conversation(r, imgs) for r, imgs in batch],
            add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self.generate_kwargs(settings))
        seconds = (time.perf_counter() - start) / len(batch)
        prompt_len = inputs["input_ids"].shape[1]
        image_token_id = getattr(self.processor, "image_token_id", None)
        predictions = []
        for row, (request, _) in enumerate(batch):
            new = output[row, prompt_len:].tolist()
            n_out = count_output_tokens(new, self.eos_ids(), self.pad_id())
            text = self.processor.tokenizer.decode(new[:n_out], skip_special_tokens=True)
            ids = inputs["input_ids"][row]
            predictions.append(Prediction(
                sample_id=request.sample_id,
                text=cut_at_stop(text, settings.stop),
                input_tokens=int(inputs["attention_mask"][row].sum()),
                visual_tokens=int((ids == image_token_id).sum()) if image_token_id is not None else None,
                output_tokens=n_out,
                seconds=seconds,
            ))
        return predictions

    def generate_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens,
                                  "pad_token_id": self.pad_id()}
        if settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        else:
            # Greedy; unset sampling knobs a checkpoint's generation_config may carry.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if settings.stop:
            kwargs.update(stop_strings=settings.stop, tokenizer=self.processor.tokenizer)
        return kwargs

    def eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.processor.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())

    def pad_id(self) -> Optional[int]:
        pad = self.processor.tokenizer.pad_token_id
        if pad is None:
            pad = self.model.generation_config.pad_token_id
        if pad is None and self.eos_ids():
            pad = min(self.eos_ids())
        return pad

    def close(self) -> None:
        import torch

        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def count_output_tokens(new: list[int], eos_ids: set[int], pad_id: Optional[int]) -> int:
    """Generated tokens up to and including the first end-of-sequence token; rows that stopped
    early are padded to the batch's longest, and that padding is not output."""
    for i, token in enumerate(new):
        if token in eos_ids:
            return i + 1
    n = len(new)
    while n and pad_id is not None and new[n - 1] == pad_id:
        n -= 1
    return n


ADAPTERS.register("hf", HFAdapter)
