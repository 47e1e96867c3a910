"""`mock`: a deterministic stand-in model for tests and benchmarks of the harness itself.

Its answer depends only on the request (prompt, image bytes, choices), never on the batch, so
it shows whether the harness keeps results independent of batching and ordering.
"""

from __future__ import annotations

import hashlib
import time

from medharness.images import ImageError, image_hash
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import Prediction, Request

DEFAULT_VOCABULARY = ("yes", "no", "ct", "mri", "x-ray", "lung", "liver", "brain", "left", "right")


class MockAdapter(ModelAdapter):
    """Options: `vocabulary` (answers to pick from), `delay` (seconds per request, for kill and
    progress tests), `fail_every` (every n-th request by hash fails, for error paths)."""

    def generate(self, requests: list[Request]) -> list[Prediction]:
        vocabulary = self.card.options.get("vocabulary", DEFAULT_VOCABULARY)
        delay = float(self.card.options.get("delay", 0.0))
        fail_every = int(self.card.options.get("fail_every", 0))
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
