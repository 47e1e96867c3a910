"""On a CUDA device: the tiny models in bf16 give batch-independent answers, the device-side
crop cutting matches the CPU pixels, and the cost record carries the peak memory."""

import pytest
import torch

from medharness.models.dragonfly.adapter import DragonflyAdapter
from medharness.schema import GenerationSettings, ImageRef, ModelCard, Request

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def images(tmp_path_factory, random_image):
    root = tmp_path_factory.mktemp("gpu-images")
    for i, size in enumerate([(640, 480), (300, 1200), (1500, 200)]):
        random_image(*size, seed=i).save(root / f"{i}.png")
    return root


@pytest.mark.parametrize("tiny", ["gen1", "gen2"])
def test_bf16_batches_equal_one_by_one_and_record_peak_memory(images, tiny):
    card = ModelCard(name=f"gpu-{tiny}", adapter="dragonfly", random_weights=True, dtype="bfloat16", device="cuda",
                     options={"tiny": tiny, "rotary_dtype": "bfloat16"})
    adapter = DragonflyAdapter(card)
    try:
        requests = [Request(sample_id=str(i), prompt="What is shown?", images=[ImageRef(root=str(images), path=f"{i}.png")],
                            generation=GenerationSettings(max_new_tokens=4)) for i in range(3)]
        batch = adapter.generate(requests)
        alone = [adapter.generate([r])[0] for r in requests]
    finally:
        adapter.close()
    assert [p.text for p in batch] == [p.text for p in alone]
    assert all(p.extra["cost"]["peak_memory_bytes"] > 0 for p in batch)


def test_device_crops_equal_cpu_crops(tiny, random_image):
    from medharness.models.dragonfly.image_processing import canvas_tensors

    for _, processor in tiny.values():
        ip = processor.image_processor
        image = random_image(700, 500, 4)
        on_device = ip.expand(canvas_tensors(ip.canvas_arrays(image), "cuda"))
        assert torch.equal(on_device.cpu(), ip(image))
