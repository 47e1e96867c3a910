"""`openai`: chat completions against any OpenAI-compatible server (vLLM, SGLang, a hosted API).

Stdlib HTTP only (urllib in threads, imported on first use): no client library to install. The API key is read from the environment variable the card names, held in
memory and sent as a header; it never enters the fingerprint, predictions, errors or logs.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from pydantic import Field

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.images import ImageError, open_image
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Request

RETRY_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
# Statuses that will fail every request the same way: stop the run with one line instead.
FATAL_STATUS = {401: "rejected the API key", 403: "refused access", 404: "has no such endpoint or model"}


class OpenAIOptions(CardOptions):
    """The `options:` an `openai` model card may set. `weights:` is the served model name."""

    base_url: str  # e.g. http://localhost:8000/v1 ; /chat/completions is appended
    api_key_env: Optional[str] = None  # name of the environment variable holding the key
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)  # first retry's delay; doubles per retry
    backoff_max_s: float = Field(60.0, ge=0)
    system_prompt: Optional[str] = None
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into each request body


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestFailed(Exception):
    """Not worth retrying (a 400, a malformed answer): this request's error."""


def image_data_url(image: Any) -> str:
    # Re-encoded as PNG: lossless, accepted by every server, whatever the source format was.
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: the attempt-th retry waits base*2^(attempt-1), capped,
    scaled by a random factor in [0.5, 1] so that clients that failed together spread out."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)


def message_text(body: dict) -> tuple[str, Optional[str]]:
    """(answer text, finish reason) from a chat completion response."""
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RequestFailed(f"malformed response: {json.dumps(body)[:200]}") from None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or "", choice.get("finish_reason")


class OpenAIAdapter(ModelAdapter):
    """Concurrent chat-completion requests with retries; failures become per-sample errors."""

    Options = OpenAIOptions

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        if not card.weights:
            raise UserError(f"model card {card.name!r}: set `weights:` to the model name the server serves")
        if not self.options.base_url.startswith(("http://", "https://")):
            raise UserError(f"model card {card.name!r}: base_url {self.options.base_url!r} must start with http:// or https://")
        self.url = self.options.base_url.rstrip("/") + "/chat/completions"
        self._api_key: Optional[str] = None
        if self.options.api_key_env:
            self._api_key = os.environ.get(self.options.api_key_env)
            if not self._api_key:
                raise UserError(f"model card {card.name!r}: environment variable "
                                f"{self.options.api_key_env} (the API key) is not set")
        self._rng = random.Random()

    def generate(self, requests: list[Request]) -> list[Prediction]:
        if not requests:
            return []
        workers = min(self.options.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.answer, requests))

    def answer(self, request: Request) -> Prediction:
        start = time.perf_counter()
        try:
            body = self.body(request)
        except ImageError as exc:
            return Prediction(sample_id=request.sample_id, error=str(exc))
        attempts, last_error = 0, ""
        while attempts <= self.options.max_retries:
            attempts += 1
            try:
                response = self.post(body)
                text, finish = message_text(response)
            except RequestFailed as exc:
                last_error = str(exc)
                break
            except RetryableError as exc:
                last_error = str(exc)
                if attempts > self.options.max_retries:
                    break
                delay = backoff_delay(attempts, self.options.backoff_s, self.options.backoff_max_s, self._rng)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.options.backoff_max_s))
                time.sleep(delay)
                continue
            usage = response.get("usage") or {}
            return Prediction(
                sample_id=request.sample_id, text=text.strip(),
                input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                seconds=time.perf_counter() - start,
                extra={"attempts": attempts, "finish_reason": finish},
            )
        return Prediction(sample_id=request.sample_id, seconds=time.perf_counter() - start,
                          error=f"request failed after {attempts} attempt(s): {last_error}",
                          extra={"attempts": attempts})

    def body(self, request: Request) -> dict[str, Any]:
        content: list[dict] = [
            {"type": "image_url", "image_url": {"url": image_data_url(open_image(ref))}}
            for ref in request.images
        ]
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict] = []
        if self.options.system_prompt:
            messages.append({"role": "system", "content": self.options.system_prompt})
        messages.append({"role": "user", "content": content})
        g = request.generation
        body: dict[str, Any] = {"model": self.card.weights, "messages": messages,
                                "max_tokens": g.max_new_tokens, "temperature": g.temperature,
                                "top_p": g.top_p}
        if g.stop:
            body["stop"] = g.stop
        return {**body, **self.options.extra_body}

    def post(self, body: dict) -> dict:
        import http.client
        import socket
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        http_request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(http_request, timeout=self.options.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            if exc.code in FATAL_STATUS:
                raise UserError(f"model card {self.card.name!r}: the server at {self.url} "
                                f"{FATAL_STATUS[exc.code]} (HTTP {exc.code}: {detail.strip()[:120]})") from None
            message = f"HTTP {exc.code}: {detail}"
            if exc.code in RETRY_STATUS or exc.code >= 500:
                raise RetryableError(message, parse_retry_after(exc.headers.get("Retry-After"))) from None
            raise RequestFailed(message) from None
        except (TimeoutError, socket.timeout):
            raise RetryableError(f"no answer within {self.options.timeout_s:g} s") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise RetryableError(f"no answer within {self.options.timeout_s:g} s") from None
            raise RetryableError(f"connection failed: {reason}") from None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise RequestFailed(f"response is not JSON: {raw[:200]!r}") from None


ADAPTERS.register("openai", OpenAIAdapter)
