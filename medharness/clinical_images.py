"""DICOM (.dcm) and NIfTI (.nii, .nii.gz) images: one 2-D view of each, rendered as 8-bit RGB.

The rule (docs/custom-data.md, "Clinical images"):
- DICOM grayscale: the frame (`frame`, 0-based; default the middle of a multi-frame file) times
  RescaleSlope plus RescaleIntercept (Hounsfield units for CT), then the DICOM linear VOI window
  (PS3.3 C.11.2.1.2.1) onto 0..255, centre and width from the record, else the card, else the
  file's first WindowCenter/WindowWidth, else the frame's min..max; MONOCHROME1 is inverted
  after windowing. Colour files (RGB, YBR: as pydicom decodes them to RGB; PALETTE COLOR through
  its lookup table) are not windowed; values above 8 bits are scaled by 255 / (2^bits - 1).
- NIfTI: the volume reoriented to the closest RAS+ orientation (nibabel's as_closest_canonical),
  scl_slope/scl_inter applied (as nibabel's array proxy does), the slice `slice` (default the
  middle) across `axis` (axial, default; coronal; sagittal), the 4-D volume `frame` (default the
  middle); shown with anterior (axial) or superior (coronal, sagittal) at the top and the
  patient's left on the image's left; windowed as for DICOM with cal_min/cal_max as the file's
  window when set, else min..max.
- Gray values are rounded to the nearest integer and copied into R, G and B.

`inspect` (at load) checks a file and pins the view every later open uses; `render` (via
`medharness.images.open_image`) draws it. pydicom and nibabel are optional: `medharness[clinical]`.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from medharness.errors import UserError
from medharness.images import ImageError, max_pixels
from medharness.schema import ClinicalView, ImageRef

DICOM_SUFFIXES = (".dcm",)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # voxel axes after reorientation to RAS+


def is_clinical(path: str) -> bool:
    return path.lower().endswith(DICOM_SUFFIXES + NIFTI_SUFFIXES)


def is_nifti(path: str) -> bool:
    return path.lower().endswith(NIFTI_SUFFIXES)


def _require(module: str, kind: str):
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f"{kind} images need {module}: pip install 'medharness[clinical]'") from None


# ---------------------------------------------------------------- reading


def read_dicom(source: Path | bytes, describe: str, header_only: bool = False) -> Any:
    pydicom = _require("pydicom", "DICOM")
    from pydicom.errors import InvalidDicomError

    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # defer_size keeps the pixel data on disk while the header is checked
        return pydicom.dcmread(handle, defer_size="64 KB" if header_only else None)
    except InvalidDicomError:
        raise ImageError(f"not a DICOM file: {describe}") from None
    except Exception as exc:  # pydicom raises many types for damaged files
        raise ImageError(f"DICOM file cannot be read: {describe}: {exc}") from None


def read_nifti(source: Path | bytes, describe: str) -> Any:
    nibabel = _require("nibabel", "NIfTI")
    try:
        if isinstance(source, Path):
            return nibabel.load(source)
        raw = gzip.decompress(source) if source[:2] == b"\x1f\x8b" else source
        for kind in (nibabel.Nifti1Image, nibabel.Nifti2Image):
            try:
                return kind.from_bytes(raw)
            except Exception:  # not this NIfTI version: try the next
                continue
        raise ValueError("neither NIfTI-1 nor NIfTI-2")
    except Exception as exc:  # nibabel raises many types for damaged or foreign files
        raise ImageError(f"not a readable NIfTI file: {describe}: {exc}") from None


def has_pixels(ds: Any) -> bool:
    return any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def pixel_data_cut_short(ds: Any, path: Path) -> bool:
    """The pixel data's declared end lies past the end of the file (checked without reading it;
    encapsulated pixel data, of undefined length, is checked when decoded)."""
    element = ds.get_item("PixelData")
    start, length = getattr(element, "value_tell", None), getattr(element, "length", None)
    if start is None or length is None or length == 0xFFFFFFFF:
        return False
    return start + length > path.stat().st_size


def dicom_frames(ds: Any) -> int:
    return int(ds.get("NumberOfFrames") or 1)


def nifti_extent(img: Any, view: ClinicalView) -> tuple[int, int]:
    """(slices across the view's axis, 4-D volumes) of the reoriented volume."""
    nibabel = _require("nibabel", "NIfTI")
    if len(img.shape) < 3:
        raise ImageError(f"NIfTI volume has {len(img.shape)} dimensions; a 3-D or 4-D volume is needed")
    order = nibabel.io_orientation(img.affine)[:, 0].astype(int)  # RAS axis each voxel axis becomes
    shape = {int(ras): img.shape[i] for i, ras in enumerate(order[:3])}
    volumes = int(np.prod(img.shape[3:])) if len(img.shape) > 3 else 1
    return shape[AXES[view.axis or "axial"]], volumes


def _index(given: Optional[int], count: int, what: str, describe: str) -> int:
    index = count // 2 if given is None else given
    if not 0 <= index < count:
        raise ImageError(f"{what} {index} is out of range: {describe} has {count} ({what}s 0..{count - 1})")
    return index


def inspect(path: Path, describe: str, view: ClinicalView, given: str) -> tuple[ClinicalView, dict[str, Any]]:
    """Check one file and pin its view: (the view with frame/slice filled in, what will be shown).
    `given` says where the view's window came from (record, card). Bad files raise ImageError
    with the reason; they are that sample's data error."""
    if is_nifti(path.name):
        img = read_nifti(path, describe)
        slices, volumes = nifti_extent(img, view)
        pinned = view.model_copy(update={
            "axis": view.axis or "axial",
            "slice": _index(view.slice, slices, "slice", describe),
            "frame": _index(view.frame, volumes, "frame", describe) if volumes > 1 else None,
        })
        window, source = nifti_window(img, pinned, given)
        record = {"slice": pinned.slice, "slices": slices, "axis": pinned.axis}
        if volumes > 1:
            record.update(frame=pinned.frame, frames=volumes)
    else:
        if view.slice is not None or view.axis is not None:
            raise ImageError(f"slice and axis apply to NIfTI volumes, not to the DICOM file {describe}")
        ds = read_dicom(path, describe, header_only=True)
        if not has_pixels(ds):
            raise ImageError(f"DICOM file has no pixel data: {describe}")
        if pixel_data_cut_short(ds, path):
            raise ImageError(f"DICOM pixel data is truncated (the file ends before it does): {describe}")
        frames = dicom_frames(ds)
        pinned = view.model_copy(update={"frame": _index(view.frame, frames, "frame", describe)})
        window, source = dicom_window(ds, pinned, given)
        record = {"frame": pinned.frame, "frames": frames, "photometric": str(ds.get("PhotometricInterpretation", ""))}
    record.update(image=describe, window=list(window) if window else None, window_from=source)
    return pinned, record


# ---------------------------------------------------------------- windows and values


Window = Optional[tuple[float, float]]


def dicom_window(ds: Any, view: ClinicalView, given: str = "given") -> tuple[Window, str]:
    """(centre, width) and where it came from; `given` names the source of a view's own window."""
    if not str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
        return None, "colour (not windowed)"
    if view.window_center is not None:
        return (view.window_center, view.window_width), given
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        return (_first(center), _first(width)), "file"
    return None, "min-max"


def _first(value: Any) -> float:
    # A file may list several windows (a MultiValue); the first is the one meant for display.
    from pydicom.multival import MultiValue

    return float(value[0] if isinstance(value, MultiValue) else value)


def nifti_window(img: Any, view: ClinicalView, given: str = "given") -> tuple[Window, str]:
    if view.window_center is not None:
        return (view.window_center, view.window_width), given
    low, high = float(img.header["cal_min"]), float(img.header["cal_max"])
    if high > low:
        return ((low + high) / 2, high - low), "cal_min/cal_max"
    return None, "min-max"


def dicom_values(ds: Any, frame: int) -> np.ndarray:
    """The frame's stored values times RescaleSlope plus RescaleIntercept (float64)."""
    pixels = ds.pixel_array
    if dicom_frames(ds) > 1:
        pixels = pixels[frame]
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float64) * slope + intercept


def nifti_slice(img: Any, view: ClinicalView) -> np.ndarray:
    """The view's 2-D slice of the RAS+ volume (float64, scaling applied), rows top to bottom."""
    nibabel = _require("nibabel", "NIfTI")
    canonical = nibabel.as_closest_canonical(img)
    data = np.asanyarray(canonical.dataobj)
    if data.ndim > 3:
        data = data.reshape(*data.shape[:3], -1)[..., view.frame or 0]
    plane = np.take(data, view.slice, axis=AXES[view.axis or "axial"]).astype(np.float64)
    return np.flipud(plane.T)  # first voxel axis (left -> right) as columns, the other upwards


def window_to_8bit(values: np.ndarray, window: Window) -> np.ndarray:
    """DICOM's linear VOI function onto 0..255 (floats); min..max when no window is given.
    Not-a-number voxels (NIfTI floats) are shown black."""
    values = np.where(np.isnan(values), -np.inf if window is None else values, values)
    if window is None:
        finite = values[np.isfinite(values)]
        if not finite.size:
            return np.zeros_like(values)
        low, high = float(finite.min()), float(finite.max())
        if high == low:
            return np.zeros_like(values)
        return np.clip((values - low) / (high - low) * 255.0, 0.0, 255.0)
    center, width = window
    if width <= 1:  # the standard's step function for a width of 1
        return np.where(values <= center - 0.5, 0.0, 255.0)
    scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    return np.clip(scaled, 0.0, 255.0)


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.clip(np.rint(values), 0, 255), nan=0.0).astype(np.uint8)


# ---------------------------------------------------------------- rendering


def render(raw: bytes, ref: ImageRef) -> Image.Image:
    """The pinned view of a clinical file as 8-bit RGB (see the module's rule)."""
    view, describe = ref.view or ClinicalView(), ref.describe()
    try:
        if is_nifti(ref.path):
            img = read_nifti(raw, describe)
            slices, volumes = nifti_extent(img, view)
            view = view.model_copy(update={"slice": _index(view.slice, slices, "slice", describe),
                                           "frame": _index(view.frame, volumes, "frame", describe)})
            gray = to_uint8(window_to_8bit(nifti_slice(img, view), nifti_window(img, view)[0]))
        else:
            gray = dicom_image(read_dicom(raw, describe), view, describe)
            if gray.ndim == 3:
                return _checked(Image.fromarray(gray, "RGB"), describe)
    except ImageError:
        raise
    except Exception as exc:  # damaged pixel data surfaces here, in many exception types
        raise ImageError(f"pixel data cannot be decoded: {describe}: {exc}") from None
    return _checked(Image.fromarray(gray, "L").convert("RGB"), describe)


def dicom_image(ds: Any, view: ClinicalView, describe: str) -> np.ndarray:
    """uint8 gray (rows, cols) for monochrome files, uint8 RGB (rows, cols, 3) for colour."""
    if not has_pixels(ds):
        raise ImageError(f"DICOM file has no pixel data: {describe}")
    frame = _index(view.frame, dicom_frames(ds), "frame", describe)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric.startswith("MONOCHROME"):
        gray = to_uint8(window_to_8bit(dicom_values(ds, frame), dicom_window(ds, view)[0]))
        return 255 - gray if photometric == "MONOCHROME1" else gray
    from pydicom.pixels import apply_color_lut

    pixels = ds.pixel_array
    if dicom_frames(ds) > 1:
        pixels = pixels[frame]
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    if pixels.ndim != 3:
        raise ImageError(f"DICOM photometric interpretation {photometric!r} is not supported: {describe}")
    bits = 8 * pixels.dtype.itemsize
    return pixels if pixels.dtype == np.uint8 else to_uint8(pixels.astype(np.float64) * 255.0 / (2 ** bits - 1))


def _checked(image: Image.Image, describe: str) -> Image.Image:
    if image.width * image.height > max_pixels():
        raise ImageError(f"image too large (over {max_pixels()} pixels): {describe}", "oversized image")
    return image
