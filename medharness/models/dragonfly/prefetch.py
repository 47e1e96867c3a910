"""Image preparation off the critical path: a thread pool turns requests' images into pixel
tensors while the model works (PIL's resize and numpy's gathers release the GIL). For a GPU
the threads stop at the uint8 canvases, which the device cuts and normalises.

A request's images are opened with `medharness.images.open_image`; several images are tiled
side by side into one canvas (Dragonfly reads one image); a broken image becomes that
request's error, never a crash.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch
from PIL import Image

from medharness.images import ImageError, open_image
from medharness.models.dragonfly.image_processing import canvas_sizes
from medharness.schema import ImageRef, Request


@dataclass
class PreparedImage:
    # float32 crops [crops, 3, se, se] (CPU runs), uint8 canvases (device runs: cut and
    # normalised on the device), or None for a text-only request
    pixels: Optional[Union[torch.Tensor, list[np.ndarray]]] = None
    error: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)
    # (rows, cols) of the high-crop grid, which float crops no longer show (gen 2's selection needs it)
    grid: Optional[tuple[int, int]] = None


def tile_side_by_side(images: list[Image.Image]) -> Image.Image:
    """One canvas holding the images left to right, top-aligned, at their own sizes (no
    resampling), on black, so that no image is dropped or distorted."""
    width = sum(i.width for i in images)
    height = max(i.height for i in images)
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    return canvas


def prepare_request_image(refs: list[ImageRef], image_processor: Any, canvases_only: bool = False) -> PreparedImage:
    if not refs:
        return PreparedImage(extra={"images": 0})
    try:
        images = [open_image(ref) for ref in refs]
    except ImageError as exc:
        return PreparedImage(error=str(exc))
    extra: dict[str, Any] = {"images": len(images)}
    if len(images) > 1:
        extra["image_layout"] = "tiled side by side, top-aligned, in request order"
        extra["image_sizes"] = [list(i.size) for i in images]
    image = images[0] if len(images) == 1 else tile_side_by_side(images)
    pixels = image_processor.canvas_arrays(image) if canvases_only else image_processor(image)
    se = image_processor.image_size
    width, height = canvas_sizes(image.size, se, image_processor.generation)[1]
    return PreparedImage(pixels=pixels, extra=extra, grid=(height // se, width // se))


class ImagePrefetcher:
    """Keyed futures: `submit` early (say, for the next batch), `get` when the model needs them."""

    def __init__(self, image_processor: Any, workers: int, canvases_only: bool = False) -> None:
        self.image_processor = image_processor
        self.canvases_only = canvases_only
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dragonfly-prep")
        self.pending: dict[str, Future] = {}

    @staticmethod
    def key(request: Request) -> str:
        return request.sample_id + "\0" + "\0".join(r.root + "/" + r.path for r in request.images)

    def submit(self, requests: list[Request]) -> None:
        for request in requests:
            key = self.key(request)
            if key not in self.pending:
                self.pending[key] = self.pool.submit(
                    prepare_request_image, request.images, self.image_processor, self.canvases_only
                )

    def get(self, request: Request) -> PreparedImage:
        self.submit([request])
        return self.pending.pop(self.key(request)).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pending.clear()
