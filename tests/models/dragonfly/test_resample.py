"""Both exact ports of Pillow's 8-bit bicubic resize, byte for byte against the installed PIL:
the torch port (device runs) and the compiled kernels (CPU runs, `native.py`).

A larger randomised check, run by hand (1500 cases of the torch port took 5.5 minutes on the
loaded 2-core machine; 4000 of the native port with sides up to 2500 take about half a minute):
    PYTHONPATH=. python tests/models/dragonfly/test_resample.py --cases 2000 --max-side 600
    PYTHONPATH=. python tests/models/dragonfly/test_resample.py --ports native --cases 4000 --max-side 2500
"""

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from medharness.models.dragonfly.image_processing import (
    DragonflyImageProcessor, canvas_sizes, canvas_tensors, clip_reference_processor, reference_pixel_values,
)
from medharness.models.dragonfly import native
from medharness.models.dragonfly.resample import PILLOW_MAJOR, coefficients, resize, vertical_first

PORTS = {
    "torch": lambda pixels, size: resize(torch.from_numpy(pixels), size).numpy(),
    "native": lambda pixels, size: native.resize(pixels, [size])[0],
}


@pytest.fixture(params=sorted(PORTS))
def port(request):
    return PORTS[request.param]


def pil_resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(pixels if pixels.shape[2] == 3 else pixels[..., 0])
    out = np.asarray(image.resize(size))
    return out if out.ndim == 3 else out[..., None]


def assert_same_as_pil(port, rng: np.random.Generator, size: tuple[int, int], out_size: tuple[int, int], channels: int = 3) -> None:
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    expected = pil_resize(pixels, out_size)
    got = port(pixels, out_size)
    assert got.shape == expected.shape
    differing = int((got != expected).sum())
    assert differing == 0, f"{size} -> {out_size}: {differing} bytes differ from PIL"


def random_cases(rng: np.random.Generator, count: int, max_side: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    sides = rng.integers(1, max_side + 1, (count, 4))
    return [((int(w), int(h)), (int(ow), int(oh))) for w, h, ow, oh in sides]


def test_hand_checked_halving(port):
    # 2x1 -> 1x1: scale 2, support 4, both taps weigh filter(0.25) = 0.8671875, normalised to
    # 1/2 each = 2**21; (2**21 + 0 * 2**21 + 255 * 2**21) >> 22 = 128.
    xmin, fixed = coefficients(2, 1)
    assert xmin.tolist() == [0] and fixed[0, :2].tolist() == [2**21, 2**21] and not fixed[0, 2:].any()
    pixels = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    assert port(pixels, (1, 1)).tolist() == [[[128, 128, 128]]]
    assert np.asarray(Image.fromarray(pixels).resize((1, 1))).tolist() == [[[128, 128, 128]]]


def test_same_size_is_a_copy_in_torch():
    pixels = torch.randint(0, 256, (5, 7, 3), dtype=torch.uint8)
    out = resize(pixels, (7, 5))
    assert torch.equal(out, pixels) and out.data_ptr() != pixels.data_ptr()


def test_random_sizes_shrink_and_enlarge(port):
    rng = np.random.default_rng(0)
    for size, out_size in random_cases(rng, 60, 600):
        assert_same_as_pil(port, rng, size, out_size)


@pytest.mark.parametrize("size", [(1, 1), (1, 600), (600, 1), (2, 599), (599, 3)])
def test_extreme_aspect_ratios(port, size):
    rng = np.random.default_rng(1)
    for out_size in [(1, 1), (600, 1), (1, 600), (37, 411), (336, 336)]:
        assert_same_as_pil(port, rng, size, out_size)


def test_single_channel_matches_mode_l(port):
    rng = np.random.default_rng(2)
    for size, out_size in random_cases(rng, 10, 300):
        assert_same_as_pil(port, rng, size, out_size, channels=1)


@pytest.mark.parametrize("generation,se,size", [
    (2, 336, (1024, 768)), (2, 336, (300, 2000)), (2, 336, (57, 40)),
    (1, 224, (2000, 300)), (1, 224, (600, 500)),
])
def test_dragonfly_canvases(port, generation, se, size):
    rng = np.random.default_rng(3)
    medium, high = canvas_sizes(size, se, generation)
    for out_size in [(se, se), medium, high]:
        assert_same_as_pil(port, rng, size, out_size)


@pytest.mark.parametrize("size,out_size,first", [
    ((50, 100), (40, 80), False),  # height shrinks by 20 = twice the width's 10: horizontal first
    ((50, 100), (41, 80), True),   # 20 > 2 * 9: vertical first
    ((60, 91), (50, 70), True),
    ((10, 10), (100, 20), False),  # height grows: always horizontal first
    ((1000, 1000), (601, 200), True),
    ((1000, 1000), (600, 200), False),
])
def test_pillow_13_pass_order(port, size, out_size, first):
    """Both orders give different bytes on noise, so matching PIL pins the rule down (before
    Pillow 13 every resize ran horizontally first)."""
    assert vertical_first(size, out_size) is (first and PILLOW_MAJOR >= 13)
    assert_same_as_pil(port, np.random.default_rng(4), size, out_size)


@pytest.mark.parametrize("pixels,size,message", [
    (torch.zeros((4, 4, 3), dtype=torch.float32), (2, 2), "uint8"),
    (torch.zeros((4, 4), dtype=torch.uint8), (2, 2), r"\[H, W, C\]"),
    (torch.zeros((4, 4, 3), dtype=torch.uint8), (0, 2), "at least 1x1"),
])
def test_bad_input_is_refused_by_the_torch_port(pixels, size, message):
    with pytest.raises(ValueError, match=message):
        resize(pixels, size)


def test_device_run_hands_over_the_rgb_image_only(random_image):
    processor = DragonflyImageProcessor(32, 2)
    image = random_image(90, 70, seed=5)
    arrays = processor.canvas_arrays(image)
    assert len(arrays) == 1 and np.array_equal(arrays[0], np.asarray(image))
    assert [a.shape for a in processor.canvas_arrays(image.convert("L"))] == [(32, 32, 3), (64, 64, 3), (192, 192, 3)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_same_bytes_as_pil(random_image):
    rng = np.random.default_rng(6)
    for size, out_size in random_cases(rng, 20, 600):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        got = resize(torch.from_numpy(pixels).cuda(), out_size).cpu().numpy()
        assert np.array_equal(got, pil_resize(pixels, out_size)), (size, out_size)
    for generation, se, size in [(2, 336, (1024, 768)), (2, 336, (300, 2000)), (1, 224, (2000, 300))]:
        image = random_image(*size, seed=generation)
        processor = DragonflyImageProcessor(se, generation)
        on_device = processor.expand(canvas_tensors(processor.canvas_arrays(image), "cuda"))
        assert on_device.is_cuda
        assert torch.equal(on_device.cpu(), reference_pixel_values(image, clip_reference_processor(image_size=se), se, generation))


def main() -> None:
    parser = argparse.ArgumentParser(description="random sizes against PIL, by hand")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--max-side", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ports", default="native,torch", help="comma list of " + ", ".join(sorted(PORTS)))
    args = parser.parse_args()
    for name in args.ports.split(","):
        port = PORTS[name.strip()]
        rng = np.random.default_rng(args.seed)
        for size, out_size in random_cases(rng, args.cases, args.max_side):
            assert_same_as_pil(port, rng, size, out_size)
        print(f"{name}: {args.cases} random resizes (sides 1..{args.max_side}), all byte-identical to Pillow {Image.__version__}")


if __name__ == "__main__":
    main()
