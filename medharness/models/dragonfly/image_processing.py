"""Dragonfly's multi-resolution crops, bit-exact with the released code and several times faster.

The released code resizes the image three times (low, medium, high canvas), cuts the canvases
into se x se crops and sends every crop through the CLIP image processor on its own
(`reference_pixel_values` below keeps that path for tests and benchmarks). Here the canvases are
cut with array views and normalised with a lookup table: every CLIP output value is a function
of one uint8 value and its channel, so a 3 x 256 table computed with the processor's own
float arithmetic (float64 rescale cast to float32, then float32 subtract and divide) gives the
same bits with one gather per value.

Where the work runs, chosen by measurement (benchmarks/dragonfly_preprocess.py):
- CPU runs (`__call__`): the compiled kernels of `native.py` make the three canvases with
  Pillow's resize arithmetic (the same bytes as PIL, vectorised) and cut each into crops
  through the table in one pass. Without them (an install with no C compiler) and for images
  in other modes (PIL resizes in the image's own mode): PIL resizes, then float32 arithmetic
  that equals the table (`pil_crops`).
- device runs (`canvas_arrays` on the host, `expand` on the device): the host only hands over
  the decoded RGB image; the device makes the three canvases with the torch port of Pillow's
  bicubic resize (the same bytes as PIL), cuts them and looks the values up. Images in other
  modes get their canvases from PIL on the host (PIL resizes in the image's own mode).
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from medharness.models.dragonfly import native
from medharness.models.dragonfly.configuration import GENERATIONS
from medharness.models.dragonfly.resample import resize

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESCALE = 1 / 255  # preprocessor_config.json writes it as 0.00392156862745098, the same double

Size = tuple[int, int]  # (width, height), as PIL


def select_best_resolution(size: Size, candidates: Sequence[Size]) -> Size:
    """LLaVA-NeXT's "anyres" choice: most effective pixels, then least waste, then the first."""
    width, height = size
    best, best_effective, best_waste = candidates[0], -1, float("inf")
    for cand_w, cand_h in candidates:
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_w * cand_h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (cand_w, cand_h), effective, waste
    return best


def canvas_sizes(size: Size, se: int, generation: int) -> tuple[Size, Size]:
    """(medium canvas, high canvas) for an image of `size` (width, height)."""
    medium = select_best_resolution(size, [(2 * se, 2 * se), (se, 4 * se), (4 * se, se)])
    if generation == 2:
        return medium, (3 * medium[0], 3 * medium[1])
    grids = [(6, 4), (4, 6), (3, 8), (8, 3), (2, 12), (12, 2)]
    return medium, select_best_resolution(size, [(gx * se, gy * se) for gx, gy in grids])


def canvases(image: Image.Image, se: int, generation: int) -> list[Image.Image]:
    """Low, medium and high canvases, resized from the original with PIL's default filter
    (bicubic; stretched, never padded) exactly as the released code does."""
    medium, high = canvas_sizes(image.size, se, generation)
    return [image.resize((se, se)), image.resize(medium), image.resize(high)]


def raster_crops(canvas: Image.Image, se: int) -> list[Image.Image]:
    width, height = canvas.size
    return [canvas.crop((x, y, x + se, y + se)) for y in range(0, height, se) for x in range(0, width, se)]


def normalization_table(mean: Sequence[float], std: Sequence[float], rescale: float = RESCALE) -> np.ndarray:
    """[3, 256] float32: the CLIP processor's output for each channel and uint8 value, computed
    with the processor's own arithmetic so that a gather reproduces it bit for bit."""
    values = (np.arange(256, dtype=np.uint8).astype(np.float64) * rescale).astype(np.float32)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None]
    return ((values[None, :] - mean32) / std32).astype(np.float32)


def rgb_array(canvas: Image.Image) -> np.ndarray:
    """[H, W, 3] uint8. Non-RGB modes get the CLIP processor's own conversion, which works
    pixel by pixel and so gives the same values on a canvas as on each crop cut from it."""
    if canvas.mode == "RGB":
        return np.asarray(canvas)
    from transformers.image_transforms import convert_to_rgb

    return convert_to_rgb(canvas, return_numpy=True)


class DragonflyImageProcessor:
    """Image -> [1 + 4 + high, 3, se, se] crops (low, medium raster, high raster)."""

    def __init__(
        self,
        image_size: int,
        generation: int,
        image_mean: Sequence[float] = OPENAI_CLIP_MEAN,
        image_std: Sequence[float] = OPENAI_CLIP_STD,
        rescale_factor: float = RESCALE,
    ) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"unknown Dragonfly generation {generation}")
        self.image_size = image_size
        self.generation = generation
        self.image_mean = tuple(image_mean)
        self.image_std = tuple(image_std)
        self.rescale_factor = rescale_factor
        self.table = normalization_table(image_mean, image_std, rescale_factor)
        self.divisor = np.float32(round(1 / rescale_factor))
        self.mean32 = np.asarray(image_mean, dtype=np.float32)
        self.std32 = np.asarray(image_std, dtype=np.float32)
        self.arithmetic_exact = self._arithmetic_matches_table()
        self._device_tables: dict[Any, torch.Tensor] = {}

    @classmethod
    def from_preprocessor_config(cls, data: dict, generation: int) -> "DragonflyImageProcessor":
        """From a CLIP preprocessor_config.json (the released checkpoints ship one)."""
        crop = data.get("crop_size", {})
        size = crop.get("height") if isinstance(crop, dict) else crop
        size = size or data.get("size", {}).get("shortest_edge")
        if data.get("do_rescale", True) is False or data.get("do_normalize", True) is False:
            raise ValueError("preprocessor_config.json turns rescaling or normalisation off; Dragonfly needs both")
        return cls(
            image_size=int(size),
            generation=generation,
            image_mean=data.get("image_mean", OPENAI_CLIP_MEAN),
            image_std=data.get("image_std", OPENAI_CLIP_STD),
            rescale_factor=data.get("rescale_factor", RESCALE),
        )

    def preprocessor_config(self) -> dict:
        se = self.image_size
        return {
            "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": se},
            "resample": 3, "do_center_crop": True, "crop_size": {"height": se, "width": se},
            "do_rescale": True, "rescale_factor": self.rescale_factor, "do_normalize": True,
            "image_mean": list(self.image_mean), "image_std": list(self.image_std), "do_convert_rgb": True,
            "dragonfly_generation": self.generation,
        }

    @property
    def num_crops(self) -> int:
        return 1 + 4 + GENERATIONS[self.generation]["high_crops"]

    def canvas_arrays(self, image: Image.Image) -> list[np.ndarray]:
        """What a device run does on the host: [H, W, 3] uint8 arrays for `expand`. An RGB
        image (what `medharness.images.open_image` gives) is handed over as it is, to be
        resized on the device; another mode gets its three canvases here, from PIL."""
        if image.mode == "RGB":
            return [np.asarray(image)]
        return [rgb_array(c) for c in canvases(image, self.image_size, self.generation)]

    def device_canvases(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The low, medium and high canvases of an [H, W, 3] uint8 image, made where it lies,
        the same bytes as `canvases` (PIL) makes from the RGB image."""
        medium, high = canvas_sizes((image.shape[1], image.shape[0]), self.image_size, self.generation)
        return [resize(image, size) for size in ((self.image_size, self.image_size), medium, high)]

    def expand(self, arrays: Sequence[torch.Tensor]) -> torch.Tensor:
        """`canvas_arrays` output as tensors (on any device with float64) -> [crops, 3, se, se]
        float32 there, bit-exact with `__call__`: one image is first resized into its three
        canvases there; crops are cut in raster order and looked up in the table."""
        se = self.image_size
        canvas_list = self.device_canvases(arrays[0]) if len(arrays) == 1 else list(arrays)
        device = canvas_list[0].device
        table = self._device_tables.get(device)
        if table is None:
            table = self._device_tables[device] = torch.from_numpy(self.table).reshape(-1).to(device)
        crops = []
        for canvas in canvas_list:
            rows, cols = canvas.shape[0] // se, canvas.shape[1] // se
            grid = canvas.view(rows, se, cols, se, 3).permute(0, 2, 4, 1, 3).reshape(rows * cols, 3, se, se)
            crops.append(grid)
        index = torch.cat(crops).long() + torch.arange(3, device=device).view(3, 1, 1) * 256
        assert index.shape[0] == self.num_crops, (index.shape, self.num_crops)
        return table[index]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """[crops, 3, se, se] float32, bit-exact with `reference_pixel_values`."""
        se = self.image_size
        out = np.empty((self.num_crops, 3, se, se), dtype=np.float32)
        if native.AVAILABLE and image.mode == "RGB":
            # compiled resizes (Pillow's bytes), cut and looked up in one pass per canvas
            medium, high = canvas_sizes(image.size, se, self.generation)
            index = 0
            for canvas in native.resize(np.asarray(image), [(se, se), medium, high]):
                index = native.write_crops(canvas, se, self.table, out, index)
        else:
            index = self.pil_crops(image, out)
        assert index == self.num_crops, (index, self.num_crops)
        return torch.from_numpy(out)

    def pil_crops(self, image: Image.Image, out: np.ndarray) -> int:
        """PIL's resizes and numpy normalisation: images in other modes (PIL resizes in the
        image's own mode), or an install without the compiled kernels."""
        se = self.image_size
        normalise = self._arithmetic if self.arithmetic_exact else self._gather
        index = 0
        for canvas in canvases(image, se, self.generation):
            pixels = rgb_array(canvas)
            for y in range(0, canvas.size[1], se):
                for x in range(0, canvas.size[0], se):
                    # one call per crop; a planar uint8 copy first is cheaper than strided reads
                    normalise(np.ascontiguousarray(pixels[y : y + se, x : x + se].transpose(2, 0, 1)), out[index])
                    index += 1
        return index

    def _gather(self, src: np.ndarray, dst: np.ndarray) -> None:
        for channel in range(3):
            np.take(self.table[channel], src[channel], out=dst[channel])

    def _arithmetic(self, src: np.ndarray, dst: np.ndarray) -> None:
        # Three float32 passes in place over [3, ...]: faster than a gather, which widens every
        # uint8 index to 64 bits first. Used only where it equals the table bit for bit
        # (checked at init).
        np.divide(src, self.divisor, out=dst, dtype=np.float32)
        np.subtract(dst, self.mean32[:, None, None], out=dst)
        np.divide(dst, self.std32[:, None, None], out=dst)

    def _arithmetic_matches_table(self) -> bool:
        """float32(x / 255) equals the processor's float32(float64(x) * rescale) for every uint8
        x when rescale is 1/255; the remaining subtract and divide are the table's own float32
        operations. Checked over all 256 values per channel rather than assumed."""
        values = np.broadcast_to(np.arange(256, dtype=np.uint8), (3, 1, 256))
        rows = np.empty((3, 1, 256), dtype=np.float32)
        self._arithmetic(values, rows)
        return bool(np.array_equal(rows[:, 0].view(np.uint32), self.table.view(np.uint32)))


def canvas_tensors(arrays: Sequence[np.ndarray], device: Any = "cpu") -> list[torch.Tensor]:
    """Tensors over `canvas_arrays` output, moved to `device`. PIL hands out read-only
    buffers; `expand` only reads them, so torch's warning about that is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return [torch.from_numpy(a).to(device, non_blocking=True) for a in arrays]


def reference_pixel_values(image: Image.Image, clip_processor: Any, image_size: int, generation: int) -> torch.Tensor:
    """The released code's path: every crop through the CLIP image processor on its own.
    Kept as the reference that tests and benchmarks compare the fast path against."""
    crops = [c for canvas in canvases(image, image_size, generation) for c in raster_crops(canvas, image_size)]
    return torch.stack([clip_processor.preprocess(c, return_tensors="pt")["pixel_values"][0] for c in crops])


def clip_reference_processor(config: Optional[dict] = None, image_size: int = 336) -> Any:
    """The PIL-backed CLIP image processor (transformers' numpy path, no torchvision needed)."""
    from transformers import CLIPImageProcessorPil

    data = dict(config or {"size": {"shortest_edge": image_size}, "crop_size": {"height": image_size, "width": image_size}})
    for key in ("image_processor_type", "processor_class", "dragonfly_generation", "feature_extractor_type"):
        data.pop(key, None)
    return CLIPImageProcessorPil(**data)
