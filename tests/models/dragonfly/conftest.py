"""Tiny random Dragonfly models of both generations, built once per session into a temp cache."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def dragonfly_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("medharness-cache")
    mp.setenv("MEDHARNESS_CACHE", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="session")
def tiny():
    """generation -> (model, processor), random weights, fp32."""
    from medharness.models.dragonfly.tiny import build_tiny

    return {gen: build_tiny(gen) for gen in (1, 2)}


def _random_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="session")
def random_image():
    """random_image(width, height, seed) -> a noise RGB image."""
    return _random_image
