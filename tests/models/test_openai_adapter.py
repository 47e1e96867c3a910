"""The `openai` adapter against a real HTTP server on 127.0.0.1 with slow, failing and
rate-limiting behaviour."""

from __future__ import annotations

import base64
import io
import json
import random
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from medharness.cards import load_model_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.models.openai_compat import OpenAIAdapter, backoff_delay, parse_retry_after
from medharness.schema import GenerationSettings, ImageRef, ModelCard, Request
from tests.core.helpers import cli, load_run, model_card, run_dirs
from tests.models.fake_openai_server import FakeOpenAIServer, hashed_answer

FAST = {"backoff_s": 0.001, "backoff_max_s": 0.05, "max_retries": 2, "timeout_s": 5.0}


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        yield s


def make_adapter(server: FakeOpenAIServer, **options) -> OpenAIAdapter:
    card = ModelCard(name="served", adapter="openai", weights="served-vlm",
                     options={"base_url": server.base_url, **FAST, **options})
    return OpenAIAdapter(card)


def png(color: tuple[int, int, int], size: tuple[int, int] = (20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def req(prompt: str, sid: str = "", images: list[ImageRef] | None = None) -> Request:
    return Request(sample_id=sid or prompt, prompt=prompt, images=images or [],
                   generation=GenerationSettings(max_new_tokens=7, stop=["###"]))


def test_answers_and_request_shape(server) -> None:
    image = ImageRef(path="a.jpg", data=png((255, 0, 0)))
    preds = make_adapter(server).generate([req("is there a fracture?", "q1", [image]), req("what organ?", "q2")])
    assert [(p.sample_id, p.text, p.error) for p in preds] == [
        ("q1", hashed_answer("is there a fracture?"), None), ("q2", hashed_answer("what organ?"), None)]
    assert preds[0].input_tokens == 4 and preds[0].output_tokens == 1
    assert preds[0].extra == {"attempts": 1, "finish_reason": "stop"}
    body = next(c["body"] for c in server.state.calls if "fracture" in json.dumps(c["body"]))
    assert body["model"] == "served-vlm"
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (7, 0.0, ["###"])
    image_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "is there a fracture?"}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (20, 10) and sent.getpixel((3, 3)) == (255, 0, 0)


def test_concurrency_is_bounded(server) -> None:
    prompts = [f"question {i}" for i in range(8)]
    for p in prompts:
        server.state.scripts[p] = ["slow:0.15"]
    start = time.monotonic()
    preds = make_adapter(server, concurrency=3).generate([req(p) for p in prompts])
    elapsed = time.monotonic() - start
    assert [p.text for p in preds] == [hashed_answer(p) for p in prompts]  # order kept
    assert server.state.max_in_flight == 3
    assert elapsed < 8 * 0.15  # ran concurrently, not one by one


def test_retries_5xx_then_succeeds(server) -> None:
    server.state.scripts["flaky"] = ["status:500", "status:503"]
    (pred,) = make_adapter(server).generate([req("flaky")])
    assert pred.error is None and pred.text == hashed_answer("flaky")
    assert pred.extra["attempts"] == 3
    assert [c["behaviour"] for c in server.state.calls] == ["status:500", "status:503", "ok"]


def test_rate_limit_honours_retry_after(server) -> None:
    server.state.scripts["busy"] = ["429:0.3"]
    (pred,) = make_adapter(server, backoff_max_s=1.0).generate([req("busy")])
    assert pred.error is None and pred.extra["attempts"] == 2
    first, second = server.state.calls
    assert second["time"] - first["time"] >= 0.3  # waited as told, not the 1 ms backoff


def test_timeout_is_retried(server) -> None:
    server.state.scripts["slow"] = ["slow:1.0"]
    (pred,) = make_adapter(server, timeout_s=0.2).generate([req("slow")])
    assert pred.error is None and pred.extra["attempts"] == 2


def test_dropped_connection_is_retried(server) -> None:
    server.state.scripts["dropped"] = ["drop"]
    (pred,) = make_adapter(server).generate([req("dropped")])
    assert pred.error is None and pred.extra["attempts"] == 2


def test_persistent_failure_is_that_samples_error(server) -> None:
    server.state.scripts["broken"] = ["status:502"] * 3
    preds = make_adapter(server).generate([req("fine"), req("broken"), req("also fine")])
    assert preds[0].error is None and preds[2].error is None
    assert preds[1].text == "" and preds[1].error.startswith("request failed after 3 attempt(s): HTTP 502")
    assert sum(c["behaviour"] == "status:502" for c in server.state.calls) == 3


def test_client_error_is_not_retried(server) -> None:
    server.state.scripts["bad"] = ["status:400"]
    (pred,) = make_adapter(server).generate([req("bad")])
    assert pred.error.startswith("request failed after 1 attempt(s): HTTP 400")
    assert len(server.state.calls) == 1


@pytest.mark.parametrize(("code", "words"), [(401, "rejected the API key"), (404, "has no such endpoint")])
def test_fatal_status_stops_the_run(server, code: int, words: str) -> None:
    server.state.scripts["x"] = [f"status:{code}"]
    with pytest.raises(UserError, match=words):
        make_adapter(server).generate([req("x")])


def test_bad_image_is_that_samples_error_without_a_call(server) -> None:
    broken = ImageRef(path="x.png", data=b"not a png")
    preds = make_adapter(server).generate([req("ok"), req("img", images=[broken])])
    assert preds[0].error is None and "cannot be decoded" in preds[1].error
    assert len(server.state.calls) == 1


def test_api_key_is_sent_but_never_recorded(server, monkeypatch) -> None:
    secret = "sk-test-very-secret-4242"
    monkeypatch.setenv("MEDHARNESS_TEST_KEY", secret)
    adapter = make_adapter(server, api_key_env="MEDHARNESS_TEST_KEY")
    server.state.scripts["fail"] = ["status:500"] * 3
    preds = adapter.generate([req("hello"), req("fail")])
    assert {c["headers"]["Authorization"] for c in server.state.calls} == {f"Bearer {secret}"}
    recorded = json.dumps([p.model_dump() for p in preds]) + json.dumps(adapter.fingerprint_parts())
    assert secret not in recorded and secret not in adapter.fingerprint()
    assert "MEDHARNESS_TEST_KEY" in json.dumps(adapter.fingerprint_parts())  # the name only


@pytest.mark.parametrize(("options", "message"), [
    ({"api_key_env": "MEDHARNESS_TEST_ABSENT_KEY"}, "MEDHARNESS_TEST_ABSENT_KEY (the API key) is not set"),
    ({"base_url": "localhost:8000/v1"}, "must start with http:// or https://"),
    ({"concurency": 4}, "unknown option 'concurency'"),
    ({"concurrency": 0}, "option 'concurrency'"),
])
def test_card_mistakes_are_one_line(server, monkeypatch, options: dict, message: str) -> None:
    monkeypatch.delenv("MEDHARNESS_TEST_ABSENT_KEY", raising=False)
    with pytest.raises(UserError, match=re.escape(message)) as err:
        make_adapter(server, **options)
    assert "\n" not in str(err.value)


def test_example_card_is_valid() -> None:
    adapter = OpenAIAdapter(load_model_card("openai-example"))
    assert adapter.url == "http://localhost:8000/v1/chat/completions"
    assert adapter.options.concurrency == 16


def test_missing_base_url() -> None:
    with pytest.raises(UserError, match="option 'base_url'"):
        OpenAIAdapter(ModelCard(name="m", adapter="openai", weights="x"))


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None)])
def test_parse_retry_after(value, expected) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    from email.utils import formatdate

    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


def test_backoff_doubles_with_jitter_and_cap() -> None:
    rng = random.Random(0)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 10.0)]:
        delays = [backoff_delay(attempt, 1.0, 10.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1


def test_run_equals_replay_of_its_answers(server, tmp_path: Path) -> None:
    """Done-when: `medharness run` through the adapter and `medharness score` on its answers
    give the same metrics."""
    data = write_fixture("vqarad", tmp_path / "data")
    server.state.scripts["Is there a pneumothorax?\nAnswer the question using a single word or phrase."] = \
        ["status:500"]  # one retry on the way
    card = model_card(tmp_path / "served.yaml", adapter="openai", weights="served-vlm", batch_size=16,
                      options={"base_url": server.base_url, **FAST, "concurrency": 4})
    results = tmp_path / "results"
    proc = cli("run", "--task", "vqarad", "--model", str(card), "--data-dir", str(data),
               "--results", str(results), "--quiet")
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    answered = [s for s in samples if not s.error]
    assert len(answered) == 18 and record["n_skipped"] == 2 and record["n_errors"] == 0  # missing and escaping images
    assert all(s.prediction == hashed_answer(s.prompt) for s in answered)
    assert any(s.extra["attempts"] == 2 for s in answered)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": s.id, "prediction": s.prediction}) + "\n" for s in answered))
    proc = cli("score", "--task", "vqarad", "--predictions", str(preds), "--data-dir", str(data),
               "--results", str(tmp_path / "scored"))
    assert proc.returncode == 0, proc.stderr
    (scored_dir,) = run_dirs(tmp_path / "scored")
    scored, _ = load_run(scored_dir)
    assert scored["metrics"]["overall"] == record["metrics"]["overall"]
    assert scored["metrics"]["groups"] == record["metrics"]["groups"]
    assert 0 < record["metrics"]["overall"]["closed_accuracy"]["value"] < 1


def test_adapter_modules_import_light() -> None:
    """discover() imports every adapter module to list plugins: none of ours may pull in torch,
    transformers or an HTTP stack at import."""
    import subprocess
    import sys

    code = ("import sys, medharness.models.hf, medharness.models.openai_compat, medharness.models.judge, "
            "medharness.metrics.judged; "
            "print([m for m in ('torch', 'transformers', 'urllib.request', 'http.client') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
