"""Crop geometry, order and normalisation; the fast path against the per-crop CLIP processor."""

import numpy as np
import pytest
import torch
from PIL import Image

from medharness.models.dragonfly.image_processing import (
    DragonflyImageProcessor, canvas_sizes, canvas_tensors, clip_reference_processor, reference_pixel_values, select_best_resolution,
)

# (generation, se, image width x height) -> (medium canvas, high canvas); gen 2 rows are the spec's
# examples, gen 1 rows hand-computed with the anyres rule (2000x300: 2688x448 keeps all 600000 pixels).
CANVASES = [
    (2, 336, (500, 300), (672, 672), (2016, 2016)),
    (2, 336, (2000, 300), (1344, 336), (4032, 1008)),
    (2, 336, (300, 2000), (336, 1344), (1008, 4032)),
    (2, 336, (500, 100), (672, 672), (2016, 2016)),
    (1, 224, (300, 500), (448, 448), (1344, 896)),  # small portrait: full tie, the first (6x4) wins
    (1, 224, (2000, 300), (896, 224), (2688, 448)),
    (1, 224, (300, 2000), (224, 896), (448, 2688)),
]


@pytest.mark.parametrize("generation,se,size,medium,high", CANVASES)
def test_canvas_choice(generation, se, size, medium, high):
    assert canvas_sizes(size, se, generation) == (medium, high)


def test_best_resolution_tie_keeps_first():
    assert select_best_resolution((10, 10), [(20, 20), (20, 20)]) == (20, 20)
    assert select_best_resolution((100, 100), [(50, 200), (200, 50), (100, 100)]) == (100, 100)


@pytest.mark.parametrize("generation,se,size", [(2, 336, (500, 300)), (1, 224, (2000, 300))])
def test_bit_exact_with_per_crop_clip_processor(generation, se, size, random_image):
    image = random_image(*size, seed=generation)
    fast = DragonflyImageProcessor(se, generation)
    reference = reference_pixel_values(image, clip_reference_processor(image_size=se), se, generation)
    assert reference.shape == (1 + 4 + (24 if generation == 1 else 36), 3, se, se)
    assert torch.equal(fast(image), reference)
    canvases = canvas_tensors(fast.canvas_arrays(image))
    assert torch.equal(fast.expand(canvases), reference)  # the device-side path


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_bit_exact_for_other_image_modes(mode, random_image):
    image = random_image(50, 70, seed=3).convert(mode)
    for generation in (1, 2):
        fast = DragonflyImageProcessor(32, generation)
        reference = reference_pixel_values(image, clip_reference_processor(image_size=32), 32, generation)
        assert torch.equal(fast(image), reference)
        assert torch.equal(fast.expand(canvas_tensors(fast.canvas_arrays(image))), reference)


def test_crop_order_is_low_then_medium_then_high_raster():
    # 64x64 quadrants of distinct grey levels; se=32, gen 2: medium canvas 64x64 = the quadrants,
    # high canvas 192x192 = 6x6 crops, each inside one quadrant.
    levels = np.array([[10, 60], [110, 160]], dtype=np.uint8)
    pixels = np.kron(levels, np.ones((32, 32), dtype=np.uint8))
    image = Image.fromarray(np.stack([pixels] * 3, -1))
    processor = DragonflyImageProcessor(32, 2)
    crops = processor(image)
    assert crops.shape == (41, 3, 32, 32)
    level = {float(processor.table[0, v]): v for v in range(256)}  # normalised red -> uint8 value
    assert [level[float(c[0, 16, 16])] for c in crops[1:5]] == [10, 60, 110, 160]
    high = [level[float(c[0].flatten().median())] for c in crops[5:]]
    expected = [int(levels[r // 3, q // 3]) for r in range(6) for q in range(6)]
    assert high == expected


def test_normalisation_values():
    image = Image.new("RGB", (32, 32), (255, 0, 128))
    out = DragonflyImageProcessor(32, 2)(image)
    red, green, blue = out[0, :, 0, 0].tolist()
    assert red == pytest.approx((1 - 0.48145466) / 0.26862954, abs=1e-6)  # 1.93030
    assert green == pytest.approx(-0.4578275 / 0.26130258, abs=1e-6)  # -1.75210
    assert blue == pytest.approx((128 / 255 - 0.40821073) / 0.27577711, abs=1e-6)  # 0.33985
    assert out.dtype == torch.float32


def test_preprocessor_config_round_trip():
    proc = DragonflyImageProcessor(224, 1)
    again = DragonflyImageProcessor.from_preprocessor_config(proc.preprocessor_config(), 1)
    assert again.image_size == 224 and np.array_equal(again.table, proc.table)
    with pytest.raises(ValueError, match="rescaling or normalisation off"):
        DragonflyImageProcessor.from_preprocessor_config({"crop_size": {"height": 224}, "do_normalize": False}, 1)


def test_arithmetic_path_equals_the_table_gather(random_image):
    """The in-place float32 arithmetic is used only where it reproduces the processor's table;
    both paths give the same bits."""
    processor = DragonflyImageProcessor(32, 2)
    assert processor.arithmetic_exact
    image = random_image(90, 70)
    fast = processor(image)
    processor.arithmetic_exact = False
    assert torch.equal(fast.view(torch.int32), processor(image).view(torch.int32))
