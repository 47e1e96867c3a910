"""Caption task loaders on generated fixtures in each layout, and their bad-input errors."""

import json
import re

import pytest

from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.images import open_image
from medharness.registry import TASK_PLUGINS
from medharness.schema import GenerationSettings
from medharness.tasks.roco import derive_modality


def plugin(task, **options):
    card = load_task_card(task)
    card = card.model_copy(update={"options": {**card.options, **options}})
    return TASK_PLUGINS.get(card.format)(card)


def load(task, folder, split=None, **options):
    p = plugin(task, **options)
    return list(p.load(folder, split or p.card.split))


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("caption-fixtures")
    names = ["iuxray", "iuxray-openi", "peir-gross", "roco", "roco-hf", "rocov2-hf", "mimic-cxr", "mimic-cxr-r2gen"]
    return {name: write_fixture(name, root) for name in names}


def test_iuxray_r2gen_layout(fixtures):
    samples = load("iuxray", fixtures["iuxray"])
    assert len(samples) == 20 and samples[0].id == "CXR1000_IM-2000"
    first = samples[0]
    assert [ref.path for ref in first.images] == ["CXR1000_IM-2000/0.png", "CXR1000_IM-2000/1.png"]
    assert all(open_image(ref).size == (40, 48) for ref in first.images)
    assert first.question == "" and first.metadata["modality"] == "xray"
    assert first.metadata["modality_source"] == "dataset"
    assert "escapes the data folder" in samples[5].error
    assert samples[3].references == ["Heart normal.\r\nLungs clear.\u2029No effusion."]
    assert len(load("iuxray", fixtures["iuxray"], "val")) == 5


def test_iuxray_request_uses_the_card_prompt_and_both_images(fixtures):
    p = plugin("iuxray")
    sample = next(iter(p.load(fixtures["iuxray"], "test")))
    request = p.request(sample, GenerationSettings())
    assert request.prompt == "Describe the findings of this chest X-ray."
    assert len(request.images) == 2


def test_iuxray_openi_composes_findings_and_impression(fixtures):
    samples = load("iuxray", fixtures["iuxray-openi"], "all")
    assert [s.id for s in samples[:3]] == ["CXR1", "CXR2", "CXR3"]
    assert len(samples[0].images) == 2 and samples[0].images[0].path == "CXR1_1_IM-0001-1000.png"
    ref = samples[0].references[0]
    assert ref.startswith("Findings: ") and " Impression: " in ref
    assert samples[3].references[0].startswith("Impression: ")  # study 4 has no findings


def test_iuxray_openi_sections_are_configurable(fixtures):
    plain = load("iuxray", fixtures["iuxray-openi"], "all", sections=["impression"], section_labels=False)
    labelled = load("iuxray", fixtures["iuxray-openi"], "all")
    assert labelled[0].references[0].endswith("Impression: " + plain[0].references[0])
    findings_only = load("iuxray", fixtures["iuxray-openi"], "all", sections=["findings"])
    assert len(findings_only) == 11  # the study without findings is skipped (skip_without_reference)


@pytest.mark.parametrize(
    "fixture, split, options, message",
    [
        ("iuxray-openi", "test", {}, "has no 'test' split; run with --split all"),
        ("iuxray-openi", "all", {"sections": ["indication"]}, "choose one or more of findings, impression"),
        ("iuxray", "test", {"sections": ["findings"]}, "need the Open-i layout"),
        ("peir-gross", "test", {}, "no annotation.json or ecgen-radiology/"),
    ],
)
def test_iuxray_bad_input(fixtures, fixture, split, options, message):
    with pytest.raises(UserError, match=message):
        load("iuxray", fixtures[fixture], split, **options)


def test_iuxray_needs_a_data_dir():
    with pytest.raises(UserError, match="reads a local copy: pass --data-dir or set MEDHARNESS_IUXRAY_DIR"):
        load("iuxray", None)


def test_peir_gross_keeps_a_lone_carriage_return_inside_its_caption(fixtures):
    samples = load("peir-gross", fixtures["peir-gross"])
    assert len(samples) == 18
    assert samples[2].references == ["Kidney: Infarct, healed, gross.\rcut surface"]
    assert samples[5].references == ["Spleen: Infarcts, multiple, gross\u2028with capsule"]
    assert samples[7].references == []  # an empty caption: kept, left out of the caption metrics
    assert samples[4].references == ["Lung: Adénocarcinome, hilar mass, gross."]
    assert {s.metadata["modality"] for s in samples} == {"gross"}
    assert open_image(samples[0].images[0]).mode == "RGB"


def test_peir_gross_missing_split_file(fixtures, tmp_path):
    with pytest.raises(UserError, match="test_images.tsv not found"):
        load("peir-gross", tmp_path)


@pytest.mark.parametrize("fixture", ["roco", "roco-hf", "rocov2-hf"])
def test_roco_layouts_and_derived_modality(fixtures, fixture):
    from medharness.fixtures.caption import ROCO_CAPTIONS

    samples = load("roco", fixtures[fixture])
    assert len(samples) == 2 * len(ROCO_CAPTIONS)
    expected = [m for _, _, m in ROCO_CAPTIONS] * 2
    assert [s.metadata["modality"] for s in samples] == expected
    assert {s.metadata["modality_source"] for s in samples} == {"derived"}
    assert all(s.error is None and len(s.images) == 1 for s in samples)
    open_image(samples[0].images[0])
    evidence = samples[0].metadata["modality_evidence"]
    assert evidence == ("keywords:ct" if fixture == "roco-hf" else "cui:C0040405")
    assert samples[0].references == ["Axial CT scan showing a hypodense liver lesion."]


def test_roco_ids_are_native(fixtures):
    assert load("roco", fixtures["roco"])[0].id == "ROCO_00000"
    assert load("roco", fixtures["rocov2-hf"], "validation")[0].id == "ROCOv2_2023_validation_000001"


@pytest.mark.parametrize(
    "caption, cuis, expected",
    [
        ("Dilated duct after reduction of the fracture; old infarct.", [], "unknown"),
        ("CT of the chest", [], "ct"),
        ("contrast ct of the chest", [], "unknown"),  # abbreviations are case-sensitive
        ("the image shows us the lesion", [], "unknown"),
        ("Transabdominal US image", [], "ultrasound"),
        ("Axial T2-weighted image", [], "mri"),
        ("Chest x ray, PA view", [], "xray"),
        ("CT and MRI of the spine", [], "unknown"),
        ("Image of the spine", ["C0024485"], "mri"),  # concept ids win over keywords
        ("CT of the spine", ["C0024485"], "mri"),
        ("CT of the spine", ["C0000001"], "ct"),  # no modality concept: keywords decide
    ],
)
def test_modality_derivation(caption, cuis, expected):
    assert derive_modality(cuis, caption)["modality"] == expected


def test_roco_offline_without_a_copy_is_a_clear_error():
    with pytest.raises(UserError, match="no local data and Hugging Face is switched off"):
        load("roco", None)


def test_mimic_cxr_layout(fixtures):
    samples = load("mimic-cxr", fixtures["mimic-cxr"])
    assert len(samples) == 11  # 12 test studies, one without a findings section
    first = samples[0]
    assert first.id == "50414267"
    assert first.metadata["views"] == ["PA", "LATERAL"]  # frontal first
    assert first.images[0].path.startswith("files/p10/p10000032/s50414267/")
    assert "\n" not in first.references[0] and "IMPRESSION" not in first.references[0]
    open_image(first.images[1])
    both = load("mimic-cxr", fixtures["mimic-cxr"], sections=["findings", "impression"], views=["PA"])
    assert len(both[0].images) == 1 and len(both[0].references[0]) > len(first.references[0])
    assert len(load("mimic-cxr", fixtures["mimic-cxr"], "validate")) == 4


def test_mimic_cxr_r2gen_layout(fixtures):
    folder = fixtures["mimic-cxr-r2gen"]
    annotation = json.loads((folder / "annotation.json").read_text())
    samples = load("mimic-cxr", folder)
    # one sample per entry (per image), in the file's order; the entries with an empty report are left out
    kept = [e for e in annotation["test"] if e["report"]]
    assert [s.id for s in samples] == [e["id"] for e in kept] and len(samples) == 10
    first = samples[0]
    assert first.images[0].root == str(folder / "images") and first.images[0].path == kept[0]["image_path"][0]
    assert open_image(first.images[0]).size == (40, 48)
    assert first.references == [kept[0]["report"]]
    assert {k: first.metadata[k] for k in ("modality", "modality_source", "study_id", "subject_id")} == {
        "modality": "xray", "modality_source": "dataset", "study_id": "50414267", "subject_id": "10000032"}
    assert "escapes the data folder" in samples[1].error
    assert len(load("mimic-cxr", folder, "val")) == 4 and len(load("mimic-cxr", folder, "train")) == 4


@pytest.mark.parametrize("split, options, message", [
    ("validate", {}, "the R2Gen layout has splits train, val, test, not 'validate'"),
    ("test", {"views": ["PA"]}, "option(s) views need the PhysioNet layout"),
])
def test_mimic_cxr_r2gen_layout_errors(fixtures, split, options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        load("mimic-cxr", fixtures["mimic-cxr-r2gen"], split, **options)


def test_mimic_cxr_physionet_layout_has_no_val_split(fixtures):
    with pytest.raises(UserError, match=re.escape("the PhysioNet layout has splits train, validate, test, not 'val'")):
        load("mimic-cxr", fixtures["mimic-cxr"], "val")


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected {split: [entries]}"),
    ('{"test": [{"report": "x", "image_path": []}]}', "test[0] has no id"),
    ("{not json", "not readable JSON"),
])
def test_r2gen_annotation_that_cannot_be_read(tmp_path, text, message):
    (tmp_path / "annotation.json").write_text(text)
    with pytest.raises(UserError, match=re.escape(message)) as info:
        load("mimic-cxr", tmp_path)
    assert "\n" not in str(info.value)


def test_r2gen_entry_whose_image_path_is_not_a_list_is_a_data_error(tmp_path):
    (tmp_path / "annotation.json").write_text(json.dumps({"test": [
        {"id": "a", "report": "Clear.", "image_path": "p10/a.jpg"}, {"id": "b", "report": "Clear.", "image_path": ["p10/b.jpg"]}]}))
    a, b = load("mimic-cxr", tmp_path)
    assert a.error == "annotation.json test[0]: image_path is not a list of paths" and b.error is None


@pytest.mark.parametrize("where", [None, "empty"])
def test_mimic_cxr_without_a_local_copy_says_how_to_get_it(where, tmp_path):
    with pytest.raises(UserError, match="credentialed PhysioNet user.*--data-dir") as info:
        load("mimic-cxr", tmp_path if where else None)
    assert "\n" not in str(info.value)


def test_split_not_on_the_card(fixtures):
    with pytest.raises(UserError, match="has no split 'dev'; choose one of train, test"):
        load("peir-gross", fixtures["peir-gross"], "dev")


def test_fixtures_are_deterministic(tmp_path):
    a = write_fixture("iuxray", tmp_path / "a")
    b = write_fixture("iuxray", tmp_path / "b")
    assert (a / "annotation.json").read_bytes() == (b / "annotation.json").read_bytes()
    assert (a / "images/CXR1000_IM-2000/0.png").read_bytes() == (b / "images/CXR1000_IM-2000/0.png").read_bytes()
    assert json.loads((a / "annotation.json").read_text())["test"][0]["id"] == "CXR1000_IM-2000"
