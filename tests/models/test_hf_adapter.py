"""The `hf` adapter on a tiny random LLaVA saved to disk and loaded through the Auto classes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from medharness.cards import load_model_card
from medharness.cli import app
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.models.base import cut_at_stop
from medharness.models.hf import HFAdapter, count_output_tokens
from medharness.schema import GenerationSettings, ImageRef, ModelCard, Request
from tests.core.helpers import load_run, model_card, run_dirs
from tests.models.hf_tiny import build_tiny_llava

# 28x28 crop, patch 14, CLS dropped by the "default" feature strategy: 4 visual tokens per image.
VISUAL_TOKENS_PER_IMAGE = 4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def adapter(tiny_dir: Path) -> HFAdapter:
    return HFAdapter(ModelCard(name="tiny", adapter="hf", weights=str(tiny_dir)))


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def request(sid: str, prompt: str, images: list[ImageRef], max_new_tokens: int = 6) -> Request:
    return Request(sample_id=sid, prompt=prompt, images=images,
                   generation=GenerationSettings(max_new_tokens=max_new_tokens))


REQUESTS = [
    request("a", "is there a fracture", [ImageRef(path="a.png", data=png((200, 10, 10)))]),
    request("b", "what organ is shown in this image of the liver and the lung",
            [ImageRef(path="b.png", data=png((10, 200, 10), (64, 48)))]),
    request("c", "describe the x ray", []),
    request("d", "is this a ct scan", [ImageRef(path="d1.png", data=png((0, 0, 250))),
                                       ImageRef(path="d2.png", data=png((250, 250, 0)))]),
]


def test_batch_equals_one_by_one(adapter: HFAdapter) -> None:
    batched = adapter.generate(REQUESTS)
    single = [adapter.generate([r])[0] for r in REQUESTS]
    assert [p.sample_id for p in batched] == ["a", "b", "c", "d"]
    for b, s in zip(batched, single):
        assert b.error is None and s.error is None
        assert (b.text, b.input_tokens, b.output_tokens, b.visual_tokens) == \
               (s.text, s.input_tokens, s.output_tokens, s.visual_tokens)
    assert any(p.text for p in batched)  # random weights still emit tokens


def test_token_accounting(adapter: HFAdapter) -> None:
    preds = adapter.generate(REQUESTS)
    assert [p.visual_tokens for p in preds] == [4, 4, 0, 8]
    for p in preds:
        assert 1 <= p.output_tokens <= 6
        assert p.seconds is not None and p.seconds > 0
    # Prompt length = the unpadded tokenised chat template.
    text_ids = adapter.processor.apply_chat_template(
        [[{"role": "user", "content": [{"type": "text", "text": "describe the x ray"}]}]],
        add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"][0]
    assert preds[2].input_tokens == len(text_ids)
    one_image = request("d1", "is this a ct scan", REQUESTS[3].images[:1])
    # A second image adds its visual tokens and the "\n" the template writes after each image.
    assert preds[3].input_tokens - adapter.generate([one_image])[0].input_tokens == \
        VISUAL_TOKENS_PER_IMAGE + 1


def test_bad_image_is_that_requests_error(adapter: HFAdapter) -> None:
    broken = request("x", "is there a fracture", [ImageRef(path="x.png", data=b"not an image")])
    preds = adapter.generate([REQUESTS[0], broken, REQUESTS[2]])
    assert preds[1].sample_id == "x" and "cannot be decoded" in preds[1].error
    assert preds[0].error is None and preds[2].error is None
    assert preds[0].text == adapter.generate([REQUESTS[0]])[0].text


def test_fingerprint_pins_local_weights(tiny_dir: Path, adapter: HFAdapter) -> None:
    assert "local_folder_hash" in adapter.fingerprint_parts()["weights"]
    assert adapter.fingerprint() == adapter.fingerprint()


def test_offline_without_weights_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = ModelCard(name="absent", adapter="hf", weights="nobody-here/not-downloaded-vlm")
    with pytest.raises(UserError) as err:
        HFAdapter(card)
    message = str(err.value)
    assert "\n" not in message
    assert "nobody-here/not-downloaded-vlm" in message and "offline" in message


def test_unset_weights_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDHARNESS_TEST_UNSET_WEIGHTS", raising=False)
    card = ModelCard(name="conv", adapter="hf", weights="$MEDHARNESS_TEST_UNSET_WEIGHTS")
    with pytest.raises(UserError, match="environment variable that is not set"):
        HFAdapter(card)


def test_unknown_option_is_rejected(tiny_dir: Path) -> None:
    card = ModelCard(name="typo", adapter="hf", weights=str(tiny_dir), options={"sytem_prompt": "x"})
    with pytest.raises(UserError, match="unknown option 'sytem_prompt'"):
        HFAdapter(card)


def test_unknown_model_class_is_rejected(tiny_dir: Path) -> None:
    card = ModelCard(name="cls", adapter="hf", weights=str(tiny_dir),
                     options={"model_class": "NoSuchModelClass"})
    with pytest.raises(UserError, match="no class 'NoSuchModelClass'"):
        HFAdapter(card)


def test_explicit_model_class_loads(tiny_dir: Path) -> None:
    card = ModelCard(name="cls", adapter="hf", weights=str(tiny_dir),
                     options={"model_class": "LlavaForConditionalGeneration"})
    assert type(HFAdapter(card).model).__name__ == "LlavaForConditionalGeneration"


@pytest.mark.parametrize(("new", "expected"), [
    ([5, 6, 2, 0, 0], 3),   # eos (2) counted, padding after it not
    ([5, 6, 7], 3),         # hit max_new_tokens
    ([5, 6, 0, 0], 2),      # stopped by a stop string: trailing padding only
    ([2, 0], 1),
])
def test_count_output_tokens(new: list[int], expected: int) -> None:
    assert count_output_tokens(new, {2}, 0) == expected


def test_cut_at_stop() -> None:
    assert cut_at_stop("yes.\nUSER: more", ["\nUSER:", "###"]) == "yes."
    assert cut_at_stop("no stop here", ["###"]) == "no stop here"
    # One rule for every adapter: cut at the earliest stop, then strip, so a stop that starts
    # with whitespace is found before the whitespace goes; empty stops are ignored.
    assert cut_at_stop("  yes \n### no", ["", "###", "no"]) == "yes"
    assert cut_at_stop("\nUSER: hi", ["\nUSER:"]) == ""


def test_tiny_llava_runs_through_the_cli_on_vqarad(tiny_dir: Path, tmp_path: Path) -> None:
    """Done-when: `medharness run` with an `hf` card on the VQA-RAD fixture (in this process:
    a subprocess would spend most of the test importing torch again)."""
    data = write_fixture("vqarad", tmp_path / "data")
    card = model_card(tmp_path / "tiny-llava.yaml", adapter="hf", weights=str(tiny_dir),
                      generation={"max_new_tokens": 4})
    results = tmp_path / "results"
    outcome = CliRunner().invoke(app, [
        "run", "--task", "vqarad", "--model", str(card), "--data-dir", str(data),
        "--batch-size", "6", "--results", str(results), "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    (run_dir,) = run_dirs(results)
    record, samples = load_run(run_dir)
    assert record["status"] == "complete" and record["n_samples"] == 18 and record["n_skipped"] == 2
    assert record["metrics"]["overall"]["overall"]["n"] == 18  # the missing and escaping images: skipped
    assert record["spec"]["model_fingerprint"] == HFAdapter(ModelCard.model_validate(
        record["spec"]["model_card"])).fingerprint()
    answered = [s for s in samples if not s.error]
    assert len(answered) == 18  # the fixture's missing and escaping images are data errors
    assert all(s.visual_tokens == VISUAL_TOKENS_PER_IMAGE for s in answered)
    assert all(1 <= s.output_tokens <= 4 and s.input_tokens > VISUAL_TOKENS_PER_IMAGE for s in answered)


@pytest.mark.parametrize("name", ["llava-next-7b", "qwen2-vl-7b", "medgemma-4b"])
def test_hub_cards_offline_without_weights_are_one_line(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = load_model_card(name)
    assert card.adapter == "hf"
    with pytest.raises(UserError) as err:
        HFAdapter(card)
    assert "\n" not in str(err.value) and card.weights in str(err.value) and "offline" in str(err.value)


def test_llava_med_card_needs_its_converted_folder(monkeypatch: pytest.MonkeyPatch, tiny_dir: Path) -> None:
    card = load_model_card("llava-med-v1.5")
    monkeypatch.delenv("MEDHARNESS_LLAVA_MED_HF", raising=False)
    with pytest.raises(UserError, match="environment variable that is not set"):
        HFAdapter(card)
    monkeypatch.setenv("MEDHARNESS_LLAVA_MED_HF", str(tiny_dir))  # any folder in LLaVA format loads
    assert HFAdapter(card).identity == HFAdapter(ModelCard(name="t", adapter="hf", weights=str(tiny_dir))).identity


def test_a_request_the_model_rejects_fails_alone(adapter: HFAdapter) -> None:
    # An image placeholder typed into the text with no image: LLaVA refuses the batch holding
    # it; the adapter then runs each request alone, so only that one becomes an error.
    rogue = request("rogue", "what is <image> here", [])
    preds = adapter.generate([REQUESTS[0], rogue, REQUESTS[2]])
    assert preds[1].error.startswith("generation failed: ")
    assert [preds[0].text, preds[2].text] == [p.text for p in adapter.generate([REQUESTS[0], REQUESTS[2]])]
