"""Tiny random models: generation against the forward pass, caching, batching, selection."""

import pytest
import torch

from medharness.models.dragonfly.processing import format_prompt

STEPS = 6


def greedy_by_forward(model, inputs, steps):
    """The reference chain: full forward over the growing sequence, argmax, no cache."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    out = []
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=inputs.get("pixel_values"), use_cache=False).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        out.append(nxt)
        ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
    return torch.cat(out, 1)


def generate_new(model, inputs, steps, **kw):
    seq = model.generate(**inputs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False, **kw)
    return seq[:, inputs["input_ids"].shape[1] :]


@pytest.mark.parametrize("generation", [1, 2])
def test_generate_equals_forward_argmax_chain_and_uncached(tiny, random_image, generation):
    model, processor = tiny[generation]
    inputs = processor([format_prompt("What organ is shown?")], [random_image(48, 36, generation)])
    with torch.no_grad():
        chain = greedy_by_forward(model, inputs, STEPS)
        cached = generate_new(model, inputs, STEPS)
        uncached = generate_new(model, inputs, STEPS, use_cache=False)
    assert torch.equal(cached, chain)
    assert torch.equal(uncached, chain)


def test_image_encoded_once_with_cache(tiny, random_image):
    model, processor = tiny[2]
    calls = []
    handle = model.image_encoder.embeddings.register_forward_hook(lambda *a: calls.append(1))
    try:
        inputs = processor([format_prompt("Where?")], [random_image(40, 40)])
        with torch.no_grad():
            generate_new(model, inputs, STEPS)
    finally:
        handle.remove()
    assert len(calls) == 1


@pytest.mark.parametrize("generation", [1, 2])
def test_batch_with_left_padding_equals_one_by_one(tiny, random_image, generation):
    model, processor = tiny[generation]
    prompts = [format_prompt(q) for q in ("Is there a lesion?", "What organ is shown in this image of the chest?", "Hi")]
    images = [random_image(48, 36, 1), random_image(30, 90, 2), None]
    with torch.no_grad():
        batched = generate_new(model, processor(prompts, images), STEPS)
        single = [generate_new(model, processor([p], [i]), STEPS) for p, i in zip(prompts, images)]
    assert torch.equal(batched, torch.cat(single))


def test_batched_logits_match_single_row(tiny, random_image):
    model, processor = tiny[2]
    prompts = [format_prompt("short"), format_prompt("a much longer question about the image")]
    images = [random_image(40, 40, 5), random_image(60, 20, 6)]
    with torch.no_grad():
        batch = processor(prompts, images)
        logits = model(**batch).logits
        alone = model(**processor(prompts[:1], images[:1])).logits
    real = batch["attention_mask"][0].bool()
    assert torch.allclose(logits[0][real], alone[0], atol=1e-4)


def test_selection_ratio_changes_span_and_must_match(tiny, random_image):
    model, processor = tiny[1]
    image = random_image(48, 36)
    quarter = processor([format_prompt("q")], [image], selection_ratio=0.25)
    full = processor([format_prompt("q")], [image], selection_ratio=1.0)
    assert full["input_ids"].shape[1] - quarter["input_ids"].shape[1] == (24 - 6) * 51
    with torch.no_grad():
        assert model(**quarter, selection_ratio=0.25).logits.shape[1] == quarter["input_ids"].shape[1]
        with pytest.raises(ValueError, match="not selection_ratio=0.5"):
            model(**quarter, selection_ratio=0.5)


def test_gen2_full_ratio_extension_equals_released_default(tiny, random_image):
    model, processor = tiny[2]
    image = random_image(70, 50, 9)
    with torch.no_grad():
        default = model(**processor([format_prompt("q")], [image])).logits
        extension = model(**processor([format_prompt("q")], [image], selection_ratio=1.0), selection_ratio=1.0).logits
    assert torch.equal(default, extension)


def test_mismatched_image_count_is_refused(tiny, random_image):
    model, processor = tiny[1]
    inputs = processor([format_prompt("q")], [random_image(40, 40)])
    inputs["pixel_values"] = torch.cat([inputs["pixel_values"]] * 2)
    with pytest.raises(ValueError, match="2 images for 1 rows"):
        model(**inputs)


def test_features_not_matching_the_placeholders_are_refused(tiny, random_image, monkeypatch):
    from medharness.models.dragonfly import modeling

    model, processor = tiny[1]
    inputs = processor([format_prompt("q")], [random_image(40, 40)])
    embed = modeling.image_embeddings
    monkeypatch.setattr(modeling, "image_embeddings", lambda *a: torch.cat([embed(*a), embed(*a)[:1]]))
    with pytest.raises(ValueError, match=r"^\d+ visual features for \d+ image placeholders$"):
        model(**inputs)


@pytest.mark.parametrize("generation", [1, 2])
def test_tower_stopped_at_the_used_layer_gives_the_same_bits(tiny, random_image, generation):
    model, processor = tiny[generation]
    pixels = processor.image_processor(random_image(50, 40, 3))
    calls = []
    last = model.image_encoder.encoder.layers[-1].register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            stopped = model.penultimate_states(pixels)
    finally:
        last.remove()
    with torch.no_grad():
        full = model.image_encoder(pixels, output_hidden_states=True).hidden_states[-2]
    assert calls == [] and torch.equal(stopped, full)


def test_prefill_computes_logits_for_the_last_position_only(tiny, random_image):
    model, processor = tiny[2]
    inputs = processor([format_prompt("Where?")], [random_image(40, 40)])
    rows = []
    handle = model.language_model.lm_head.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[1]))
    try:
        with torch.no_grad():
            new = generate_new(model, inputs, 3)
    finally:
        handle.remove()
    assert rows == [1, 1, 1]  # prefill and each decoding step: one position
    with torch.no_grad():
        assert torch.equal(new[:, :1], model(**inputs).logits[:, -1].argmax(-1, keepdim=True))
