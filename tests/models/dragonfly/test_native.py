"""The compiled CPU kernels (`native.py`, `_resample.c`) beyond the resizes that test_resample.py
compares with PIL: that the dev install has them, several canvases from one image, the cut into
normalised crops, the fallback without them, and the refusals of bad input."""

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from medharness.models.dragonfly import native
from medharness.models.dragonfly.image_processing import DragonflyImageProcessor, clip_reference_processor, reference_pixel_values


def test_the_dev_install_compiles_the_kernels():
    # `optional` in pyproject.toml lets an install without a compiler fall back to PIL; the
    # tested install must not fall back unnoticed.
    assert native.AVAILABLE, "pip install -e . did not build medharness/models/dragonfly/_resample.c"


def test_several_sizes_from_one_image_equal_pil_one_by_one():
    pixels = np.random.default_rng(0).integers(0, 256, (77, 130, 3), dtype=np.uint8)
    sizes = [(130, 77), (32, 32), (300, 20), (130, 40), (64, 77), (9, 400)]  # same size, each pass alone, both
    outputs = native.resize(pixels, sizes)
    for size, out in zip(sizes, outputs):
        assert np.array_equal(out, np.asarray(Image.fromarray(pixels).resize(size))), size
    assert not np.shares_memory(outputs[0], pixels)  # the same size is a copy, as in PIL


@pytest.mark.parametrize("generation,se,size", [(2, 32, (90, 70)), (2, 336, (300, 2000)), (1, 224, (2000, 300)), (1, 32, (17, 5))])
def test_crops_equal_the_per_crop_clip_processor(generation, se, size, random_image, monkeypatch):
    image = random_image(*size, seed=generation)
    reference = reference_pixel_values(image, clip_reference_processor(image_size=se), se, generation)
    processor = DragonflyImageProcessor(se, generation)
    calls = []
    write = native.write_crops
    monkeypatch.setattr(native, "write_crops", lambda *a: calls.append(1) or write(*a))
    assert torch.equal(processor(image), reference)
    assert len(calls) == 3  # one cut per canvas: the compiled path ran
    monkeypatch.setattr(native, "AVAILABLE", False)  # an install without a C compiler
    assert torch.equal(processor(image), reference) and len(calls) == 3


def test_threads_share_the_kernels():
    # the kernels run without the GIL: concurrent calls must not share state
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (200 + i, 150, 3), dtype=np.uint8) for i in range(4)]
    expected = [np.asarray(Image.fromarray(im).resize((336, 336))) for im in images]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, native.resize(images[i], [(336, 336)])[0])) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], expected[i]) for i in range(4))


@pytest.mark.parametrize("pixels,size,message", [
    (np.zeros((4, 4, 3), dtype=np.float32), (2, 2), "uint8"),
    (np.zeros((4, 4), dtype=np.uint8), (2, 2), r"\[H, W, 3\]"),
    (np.zeros((4, 4, 4), dtype=np.uint8), (2, 2), "RGB"),  # RGBA: PIL premultiplies alpha
    (np.zeros((4, 4, 3), dtype=np.uint8), (0, 2), "at least 1x1"),
])
def test_resize_refuses_bad_input(pixels, size, message):
    with pytest.raises(ValueError, match=message):
        native.resize(pixels, [size])


def test_write_crops_refuses_bad_input():
    canvas = np.zeros((64, 64, 3), dtype=np.uint8)
    table = DragonflyImageProcessor(32, 2).table
    out = np.empty((4, 3, 32, 32), dtype=np.float32)
    assert native.write_crops(canvas, 32, table, out, 0) == 4
    with pytest.raises(ValueError, match="float32"):
        native.write_crops(canvas, 32, table, out.astype(np.float64), 0)
    with pytest.raises(ValueError, match="table"):
        native.write_crops(canvas, 32, table.astype(np.float64), out, 0)
    with pytest.raises(ValueError, match="does not cut into 30 px crops"):
        native.write_crops(np.zeros((60, 64, 3), dtype=np.uint8), 30, table, np.empty((4, 3, 30, 30), dtype=np.float32), 0)
    with pytest.raises(ValueError, match="out holds"):  # 4 crops from index 1 do not fit in 4
        native.write_crops(canvas, 32, table, out, 1)
    with pytest.raises(ValueError, match="start at index -1"):  # would write before the array
        native.write_crops(canvas, 32, table, out, -1)


def test_kernel_refuses_windows_outside_the_input():
    kernels = native._resample  # not imported at the top: a GPU machine's tree may lack the build
    src = np.zeros((4, 6), dtype=np.uint8)
    dst = np.empty((2, 6), dtype=np.uint8)
    counts, coeffs = np.array([2, 2], dtype=np.int32), np.zeros(4, dtype=np.int32)
    with pytest.raises(ValueError, match="window 1 reads rows 3..5 of 4"):
        kernels.pass_rows(src, 4, 6, dst, 2, np.array([0, 3], dtype=np.int32), counts, coeffs, 2, False, 3)
    with pytest.raises(ValueError, match="src holds 24 bytes, needs 30"):
        kernels.pass_rows(src, 5, 6, dst, 2, np.array([0, 1], dtype=np.int32), counts, coeffs, 2, False, 3)
    with pytest.raises((ValueError, BufferError), match="read-only|not writable"):
        dst.flags.writeable = False
        kernels.pass_rows(src, 4, 6, dst, 2, np.array([0, 1], dtype=np.int32), counts, coeffs, 2, False, 3)
