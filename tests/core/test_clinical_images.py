"""DICOM and NIfTI rendering on the real files pydicom and nibabel ship, checked against the
libraries' own arrays; bad files as per-sample errors; the view in the image hash."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_rescale, apply_windowing

from medharness.clinical_images import dicom_values, inspect, nifti_slice, render
from medharness.errors import UserError
from medharness.images import ImageError, image_hash, open_image
from medharness.schema import ClinicalView, ImageRef

NIFTI = Path(nibabel.__file__).parent / "tests" / "data"


def dicom(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


def pinned(path: Path, view: ClinicalView = ClinicalView(), given: str = "record") -> tuple[ImageRef, dict]:
    view, shown = inspect(path, path.name, view, given)
    return ImageRef(root=str(path.parent), path=path.name, view=view), shown


def gray(ref: ImageRef) -> np.ndarray:
    rgb = np.asarray(open_image(ref))
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0].astype(int)


def test_ct_rescale_equals_pydicoms_modality_lut_and_min_max_is_the_default_window():
    ds = pydicom.dcmread(dicom("CT_small.dcm"))
    hounsfield = apply_rescale(ds.pixel_array, ds)
    assert ds.RescaleIntercept == -1024 and np.array_equal(dicom_values(ds, 0), hounsfield)
    ref, shown = pinned(dicom("CT_small.dcm"))
    assert shown["window_from"] == "min-max" and shown["window"] is None
    low, high = hounsfield.min(), hounsfield.max()
    assert np.array_equal(gray(ref), np.rint((hounsfield - low) / (high - low) * 255))


def test_the_files_window_equals_pydicoms_voi_windowing():
    ds = pydicom.dcmread(dicom("MR_small.dcm"))
    ref, shown = pinned(dicom("MR_small.dcm"))
    assert shown["window"] == [600.0, 1600.0] and shown["window_from"] == "file"
    # pydicom maps the window onto the stored range (signed 16-bit here); ours onto 0..255
    theirs = apply_windowing(apply_rescale(ds.pixel_array, ds).astype(float), ds)
    y_min, y_max = -(2 ** 15), 2 ** 15 - 1
    assert np.array_equal(gray(ref), np.rint((theirs - y_min) / (y_max - y_min) * 255))


def test_a_given_window_overrides_the_files_and_is_part_of_the_hash():
    ds = pydicom.dcmread(dicom("MR_small.dcm"))
    ref, shown = pinned(dicom("MR_small.dcm"), ClinicalView(window_center=100.0, window_width=200.0), given="card")
    assert shown["window"] == [100.0, 200.0] and shown["window_from"] == "card"
    values = ds.pixel_array.astype(float)
    expected = np.clip(((values - 99.5) / 199 + 0.5) * 255, 0, 255)
    assert np.array_equal(gray(ref), np.rint(expected))
    plain, _ = pinned(dicom("MR_small.dcm"))
    assert image_hash(ref) != image_hash(plain) != image_hash(ImageRef(root=plain.root, path=plain.path))


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(dicom("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "inverted.dcm")
    inverted, _ = pinned(tmp_path / "inverted.dcm")
    normal, _ = pinned(dicom("MR_small.dcm"))
    assert np.array_equal(gray(inverted), 255 - gray(normal))


def test_multi_frame_takes_the_named_frame_or_the_middle():
    ds = pydicom.dcmread(dicom("rtdose.dcm"))
    middle, shown = pinned(dicom("rtdose.dcm"))
    assert (shown["frame"], shown["frames"]) == (7, 15)
    third, _ = pinned(dicom("rtdose.dcm"), ClinicalView(frame=3))
    for ref, k in ((middle, 7), (third, 3)):
        frame = ds.pixel_array[k].astype(float)
        assert np.array_equal(gray(ref), np.rint((frame - frame.min()) / (frame.max() - frame.min()) * 255))
    with pytest.raises(ImageError, match=r"frame 15 is out of range: rtdose.dcm has 15 \(frames 0..14\)"):
        pinned(dicom("rtdose.dcm"), ClinicalView(frame=15))


def test_colour_dicom_is_shown_as_pydicom_decodes_it():
    ds = pydicom.dcmread(dicom("SC_rgb_rle_2frame.dcm"))
    ref, shown = pinned(dicom("SC_rgb_rle_2frame.dcm"))
    assert shown["window_from"] == "colour (not windowed)" and shown["frame"] == 1
    assert np.array_equal(np.asarray(open_image(ref)), ds.pixel_array[1])


def test_nifti_default_is_the_middle_axial_slice_of_the_middle_volume_in_ras_orientation():
    path = NIFTI / "example4d.nii.gz"
    img = nibabel.load(path)
    assert nibabel.aff2axcodes(img.affine) == ("L", "A", "S")  # stored right-to-left
    ref, shown = pinned(path)
    assert {k: shown[k] for k in ("slice", "slices", "axis", "frame", "frames")} == {
        "slice": 12, "slices": 24, "axis": "axial", "frame": 1, "frames": 2}
    plane = nifti_slice(img, ref.view)
    data = img.get_fdata()
    nx, ny = data.shape[:2]
    # row 0 is the most anterior voxel row, column 0 the patient's left (the file's last x)
    for row, col in ((0, 0), (5, 17), (ny - 1, nx - 1)):
        assert plane[row, col] == data[nx - 1 - col, ny - 1 - row, 12, 1]
    low, high = img.header["cal_min"], img.header["cal_max"]
    assert shown["window"] == [(low + high) / 2, high - low] and shown["window_from"] == "cal_min/cal_max"
    expected = np.clip(((plane - ((low + high) / 2 - 0.5)) / (high - low - 1) + 0.5) * 255, 0, 255)
    assert np.array_equal(gray(ref), np.rint(expected))


def test_nifti_coronal_and_sagittal_slices():
    path = NIFTI / "anatomical.nii"
    img = nibabel.load(path)
    canonical = nibabel.as_closest_canonical(img).get_fdata()
    coronal, shown = pinned(path, ClinicalView(axis="coronal", slice=20))
    assert shown["slices"] == 41 and open_image(coronal).size == (33, 25)
    assert np.array_equal(nifti_slice(img, coronal.view), np.flipud(canonical[:, 20, :].T))
    sagittal, _ = pinned(path, ClinicalView(axis="sagittal"))
    assert np.array_equal(nifti_slice(img, sagittal.view), np.flipud(canonical[16, :, :].T))


@pytest.mark.parametrize("make, view, message", [
    (lambda d: d / "report.dcm", ClinicalView(), "not a DICOM file: report.dcm"),
    (lambda d: dicom("rtplan.dcm"), ClinicalView(), "DICOM file has no pixel data: rtplan.dcm"),
    (lambda d: dicom("MR_truncated.dcm"), ClinicalView(), "DICOM pixel data is truncated"),
    (lambda d: NIFTI / "anatomical.nii", ClinicalView(slice=25), r"slice 25 is out of range: anatomical.nii has 25 \(slices 0..24\)"),
    (lambda d: dicom("CT_small.dcm"), ClinicalView(slice=1), "slice and axis apply to NIfTI volumes"),
    (lambda d: d / "scan.nii.gz", ClinicalView(), "not a readable NIfTI file: scan.nii.gz"),
])
def test_bad_clinical_files_are_image_errors_with_the_reason(tmp_path, make, view, message):
    (tmp_path / "report.dcm").write_text("not a DICOM file\n")
    (tmp_path / "scan.nii.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(ImageError, match=message):
        inspect(make(tmp_path), make(tmp_path).name, view, "record")


def test_truncated_pixel_data_found_when_decoding_too(tmp_path):
    ref = ImageRef(root=str(dicom("MR_truncated.dcm").parent), path="MR_truncated.dcm")
    with pytest.raises(ImageError, match="pixel data cannot be decoded: MR_truncated.dcm"):
        render(dicom("MR_truncated.dcm").read_bytes(), ref)


@pytest.mark.parametrize("module, name", [("pydicom", "CT_small.dcm"), ("nibabel", "anatomical.nii")])
def test_missing_library_is_one_line_naming_the_extra(monkeypatch, module, name):
    path = dicom(name) if name.endswith(".dcm") else NIFTI / name
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(UserError, match=rf"^\w+ images need {module}: pip install 'medharness\[clinical\]'$"):
        inspect(path, name, ClinicalView(), "record")


@pytest.mark.parametrize("fields, message", [
    ({"window_center": 40.0}, "window_center and window_width go together"),
    ({"window_center": "40", "window_width": 400}, "valid number"),
    ({"frame": 1.0}, "valid integer"),
    ({"axis": "transverse"}, "'axial', 'coronal' or 'sagittal'"),
    ({"window_center": 40, "window_width": 0}, "greater than 0"),
])
def test_view_values_of_the_wrong_kind_are_errors_never_coerced(fields, message):
    with pytest.raises(ValueError, match=message):
        ClinicalView(**fields)
