"""The `dragonfly` adapter on the tiny checkpoints: accounting, images, errors, cards."""

import subprocess
import sys

import pytest
from PIL import Image

from medharness.errors import UserError
from medharness.models.dragonfly.adapter import DragonflyAdapter
from medharness.models.dragonfly.prefetch import tile_side_by_side
from medharness.schema import GenerationSettings, ImageRef, ModelCard, Request


def card(tiny="gen1", **kw):
    return ModelCard(name=f"dragonfly-tiny-{tiny}", adapter="dragonfly", random_weights=True, dtype="float32",
                     device="cpu", options={"tiny": tiny, "preprocess_workers": 2}, **kw)


@pytest.fixture(scope="module")
def adapters():
    made = {g: DragonflyAdapter(card(g)) for g in ("gen1", "gen2")}
    yield made
    for a in made.values():
        a.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory, random_image):
    root = tmp_path_factory.mktemp("images")
    for name, size, seed in [("a.png", (40, 30), 1), ("b.jpg", (25, 60), 2), ("c.png", (64, 20), 3)]:
        random_image(*size, seed=seed).save(root / name)
    (root / "broken.png").write_bytes(b"not an image")
    return root


def request(sid, root, names, ratio=None, **gen):
    refs = [ImageRef(root=str(root), path=n) for n in names]
    settings = GenerationSettings(max_new_tokens=4, selection_ratio=ratio, **gen)
    return Request(sample_id=sid, prompt=f"question {sid}?", images=refs, generation=settings)


def test_prediction_accounting_and_labels(adapters, images):
    [pred] = adapters["gen1"].generate([request("1", images, ["a.png"])])
    assert pred.error is None and isinstance(pred.text, str)
    assert pred.visual_tokens == 17 * 17  # gen 1 default: low + 4 medium + 12 high crops of 17 tokens
    assert pred.input_tokens > 17 * 18 and 1 <= pred.output_tokens <= 4 and pred.seconds > 0
    assert pred.extra["selection_ratio"] == 0.5 and pred.extra["generation"] == 1
    assert pred.extra["random_weights"] is True


@pytest.mark.parametrize("tiny,ratio,visual,effective", [
    ("gen1", 0.25, 11 * 17, 0.25), ("gen1", 1.0, 29 * 17, 1.0),
    ("gen2", None, 65 + 40 * 5, 1.0), ("gen2", 0.25, 65 + 13 * 5, 0.25),
])
def test_selection_ratio_sets_visual_tokens(adapters, images, tiny, ratio, visual, effective):
    [pred] = adapters[tiny].generate([request("1", images, ["a.png"], ratio=ratio)])
    assert (pred.visual_tokens, pred.extra["selection_ratio"]) == (visual, effective)


def test_batch_answers_equal_one_by_one_and_errors_stay_local(adapters, images):
    adapter = adapters["gen2"]
    batch = [request("1", images, ["a.png"]), request("2", images, ["broken.png"]),
             request("3", images, []), request("4", images, ["b.jpg", "c.png"]), request("5", images, ["gone.png"])]
    preds = adapter.generate(batch)
    assert [p.sample_id for p in preds] == ["1", "2", "3", "4", "5"]
    assert "cannot be decoded" in preds[1].error and "not found" in preds[4].error
    assert preds[2].visual_tokens == 0 and preds[2].error is None  # text only: no image span
    assert preds[3].extra["images"] == 2 and "side by side" in preds[3].extra["image_layout"]
    for i in (0, 2, 3):
        [alone] = adapter.generate([batch[i]])
        assert (alone.text, alone.output_tokens) == (preds[i].text, preds[i].output_tokens)


def test_device_style_canvases_give_the_same_answers(adapters, images):
    from medharness.models.dragonfly.prefetch import ImagePrefetcher

    adapter = adapters["gen1"]
    batch = [request("1", images, ["a.png"]), request("2", images, ["b.jpg", "c.png"])]
    on_cpu = adapter.generate(batch)
    saved = adapter.prefetcher
    adapter.prefetcher = ImagePrefetcher(adapter.processor.image_processor, 2, canvases_only=True)
    try:
        as_on_gpu = adapter.generate(batch)
    finally:
        adapter.prefetcher.close()
        adapter.prefetcher = saved
    assert [p.text for p in as_on_gpu] == [p.text for p in on_cpu]


def test_tiling_keeps_every_image():
    left, right = Image.new("RGB", (3, 2), (255, 0, 0)), Image.new("RGB", (2, 4), (0, 255, 0))
    canvas = tile_side_by_side([left, right])
    assert canvas.size == (5, 4)
    assert canvas.getpixel((0, 0)) == (255, 0, 0) and canvas.getpixel((3, 3)) == (0, 255, 0)
    assert canvas.getpixel((0, 3)) == (0, 0, 0)  # below the shorter image: black


def test_sampling_is_refused(adapters, images):
    with pytest.raises(UserError, match="greedily"):
        adapters["gen1"].generate([request("1", images, ["a.png"], temperature=0.7)])


def test_fingerprint_names_the_weights(adapters):
    one, two = adapters["gen1"], adapters["gen2"]
    assert one.fingerprint_parts()["weights_identity"] != two.fingerprint_parts()["weights_identity"]
    assert one.fingerprint() != two.fingerprint()
    assert DragonflyAdapter(card("gen1")).fingerprint() == one.fingerprint()  # rebuilt: same identity


def test_missing_hub_weights_offline_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    bad = ModelCard(name="dragonfly-med", adapter="dragonfly", weights="togethercomputer/Llama-3.1-8B-Dragonfly-Med-v2")
    with pytest.raises(UserError) as err:
        DragonflyAdapter(bad)
    assert "hf download togethercomputer/Llama-3.1-8B-Dragonfly-Med-v2" in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_tiny_option(tmp_path):
    with pytest.raises(UserError, match="option .tiny.: Input should be .gen1. or .gen2."):
        DragonflyAdapter(card("gen3"))


def test_adapter_module_is_import_light():
    code = "import sys, medharness.models.dragonfly.adapter, medharness.models.dragonfly; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
