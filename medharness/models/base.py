"""The one interface every model adapter implements."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

from medharness.cards import CardOptions, parse_options
from medharness.schema import ModelCard, Prediction, Question, Request, Sample


class ModelAdapter(ABC):
    """generate(requests) -> predictions, one per request, in the same order.

    Adapters import heavy dependencies (torch, transformers, HTTP clients) lazily, inside
    __init__ or generate, so that listing and validating cards stays fast. A request that fails
    becomes a Prediction with `error` set; an adapter raises only when nothing can work (the
    run stops with that message).
    """

    # What the runner reads (docs/adapters.md). needs_train: load the task's train split (gold
    # included) for `prepare`, refuse tasks without one. needs_images False: never opens images,
    # so cache keys leave them out. use_cache False: never cached (the only switch but --no-cache).
    needs_train: ClassVar[bool] = False
    needs_images: ClassVar[bool] = True
    use_cache: ClassVar[bool] = True

    Options: ClassVar[type[CardOptions]] = CardOptions  # the card options this adapter reads

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.options = self.check_card(card)

    @classmethod
    def check_card(cls, card: ModelCard) -> CardOptions:
        """The card's options as this adapter declares them (checked by `validate` too)."""
        return parse_options(f"model card {card.name!r} (adapter {card.adapter})", card.options, cls.Options)

    def prepare(self, train: Sequence[Sample], evaluated: Sequence[Question]) -> None:
        """Called once before the first batch. `train` is the answered train split when
        `needs_train` (else empty); `evaluated` the samples to answer, without their gold
        answers or anything derived from them. Most adapters need nothing."""

    def prefetch(self, requests: list[Request]) -> None:
        """Called with the next batch's uncached requests before `generate` runs the current
        one, so an adapter can prepare inputs (decode, preprocess) in the background."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Prediction]:
        """Answer a batch. Outputs must not depend on the batch's size or composition."""

    def fingerprint(self) -> str:
        """Identifies everything that changes outputs: the card, plus weights where known.

        Adapters that load weights extend `fingerprint_parts`.
        """
        blob = json.dumps(self.fingerprint_parts(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def fingerprint_parts(self) -> dict:
        return {"card": self.card.model_dump(exclude={"description", "batch_size"})}

    def close(self) -> None:
        """Release resources (servers, GPU memory). Called once at the end of a run."""


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The one rule for stop strings, whatever the adapter: the decoded text up to the earliest
    stop string (empty stops ignored), with surrounding whitespace stripped. Stripping comes
    after the cut, so a stop that begins with whitespace ("\nUSER:") is still found."""
    cuts = [text.find(s) for s in stops if s and s in text]
    return (text[: min(cuts)] if cuts else text).strip()
