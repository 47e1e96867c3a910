"""`mock`: a deterministic stand-in model for tests and benchmarks of the harness itself.

Its answer depends only on the request (prompt, image bytes, choices), never on the batch, so
it shows whether the harness keeps results independent of batching and ordering.
"""

from __future__ import annotations

import hashlib
import time

from pydantic import Field

from medharness.cards import CardOptions
from medharness.images import ImageError, image_hash
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import Prediction, Request

DEFAULT_VOCABULARY = ("yes", "no", "ct", "mri", "x-ray", "lung", "liver", "brain", "left", "right")


class MockOptions(CardOptions):
    vocabulary: list[str] = Field(default_factory=lambda: list(DEFAULT_VOCABULARY), min_length=1)  # answers to pick from
    delay: float = Field(0.0, ge=0)  # seconds per request, for kill and progress tests
    fail_every: int = Field(0, ge=0)  # every n-th request by hash fails, for error paths


class MockAdapter(ModelAdapter):
    Options = MockOptions

    def generate(self, requests: list[Request]) -> list[Prediction]:
        vocabulary, delay, fail_every = self.options.vocabulary, self.options.delay, self.options.fail_every
        out = []
        for request in requests:
            if delay:
                time.sleep(delay)
            try:
                images = [image_hash(i) for i in request.images]
            except ImageError as exc:
                out.append(Prediction(sample_id=request.sample_id, error=str(exc)))
                continue
            h = int(hashlib.sha256("\x1f".join([request.prompt, *images]).encode()).hexdigest(), 16)
            if fail_every and h % fail_every == 0:
                out.append(Prediction(sample_id=request.sample_id, error="mock failure (fail_every)"))
                continue
            options = request.choices or vocabulary
            text = options[h % len(options)]
            out.append(Prediction(
                sample_id=request.sample_id, text=text, input_tokens=len(request.prompt.split()),
                visual_tokens=0, output_tokens=len(text.split()), seconds=delay,
            ))
        return out


ADAPTERS.register("mock", MockAdapter)
