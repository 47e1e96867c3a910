"""Parquet images stay in their file until their batch is planned (issue 15, item 5): loading
reads no image bytes, references find the right bytes in any row group, a run gives the same
results as with the bytes in memory, and a bad image is still that sample's error."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medharness import images
from medharness.cards import load_task_card
from medharness.errors import UserError
from medharness.fixtures.base import write_fixture
from medharness.fixtures.medvqa import image_bytes as jpeg  # a small JPEG per seed
from medharness.images import ImageError, image_bytes, image_hash, open_image
from medharness.models.mock import MockAdapter
from medharness.registry import ADAPTERS, TASK_PLUGINS
from medharness.results import read_samples
from medharness.runner import RunConfig, execute
from medharness.schema import ImageRef
from medharness.tasks.general_data import image_refs, read_rows
from tests.tasks.test_general_loaders import fixture_name_for

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# task -> the fixture holding it in a parquet layout
PARQUET_FIXTURES = {"pathvqa": "pathvqa-hf", "vqarad": "vqarad-hf", "roco": "roco-hf",
                    "hallusionbench": "hallusionbench", "mmmu": fixture_name_for("mmmu"), "gqa": fixture_name_for("gqa")}


def load(task: str, folder: Path) -> list:
    card = load_task_card(task)
    return list(TASK_PLUGINS.get(card.format)(card).load(folder, card.split))


@pytest.mark.parametrize("task", sorted(PARQUET_FIXTURES))
def test_loading_a_parquet_split_reads_no_image_bytes(task, tmp_path, monkeypatch):
    folder = write_fixture(PARQUET_FIXTURES[task], tmp_path)
    schemas_read: list[str] = []
    read_row_group = pq.ParquetFile.read_row_group

    def recording(self, i, columns=None, **kwargs):
        table = read_row_group(self, i, columns=columns, **kwargs)
        schemas_read.append(str(table.schema))
        return table

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", recording)
    monkeypatch.setattr(images, "_parquet_bytes", lambda cell: pytest.fail("image bytes read while loading"))
    samples = load(task, folder)
    refs = [ref for s in samples for ref in s.images]
    assert refs and all(ref.data is None and ref.parquet is not None for ref in refs)
    assert schemas_read and not [t for t in schemas_read if "binary" in t]  # no image bytes left the file


def write_table(path: Path, rows: list[dict], row_group_size: int) -> Path:
    schema = pa.schema([("image", IMAGE), ("pages", pa.list_(IMAGE)), ("question", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=row_group_size)
    return path


def test_references_find_their_bytes_in_every_row_group_and_list_item(tmp_path):
    rows = [{"image": {"bytes": jpeg(i), "path": f"{i}.jpg"},
             "pages": [{"bytes": jpeg(100 + i), "path": None}, None, {"bytes": jpeg(200 + i), "path": "p.jpg"}],
             "question": f"q{i}"} for i in range(10)]
    rows[4]["image"] = None  # a row without its image
    loaded = list(read_rows([write_table(tmp_path / "t.parquet", rows, row_group_size=3)]))
    assert [r["question"] for r in loaded] == [f"q{i}" for i in range(10)]
    for i, row in enumerate(loaded):
        single = image_refs(row["image"], f"{i}.png")
        assert [image_bytes(r) for r in single] == ([] if i == 4 else [jpeg(i)])
        pages = image_refs(row["pages"], "pages")
        assert [r.path for r in pages] == ["pages[0]", "p.jpg"]  # the null item is no image
        assert [image_bytes(r) for r in pages] == [jpeg(100 + i), jpeg(200 + i)]
    assert {r.parquet.row_group for row in loaded for r in image_refs(row["image"], "x")} == {0, 1, 2, 3}


def test_only_a_few_row_groups_stay_in_memory(tmp_path, monkeypatch):
    rows = [{"image": {"bytes": jpeg(i), "path": f"{i}.jpg"}, "pages": [], "question": ""} for i in range(12)]
    refs = [ref for row in read_rows([write_table(tmp_path / "t.parquet", rows, row_group_size=2)])
            for ref in image_refs(row["image"], "x")]
    monkeypatch.setattr(images, "PARQUET_ROW_GROUPS_KEPT", 2)
    images._row_groups.clear()
    assert [image_bytes(r) for r in refs] == [jpeg(i) for i in range(12)]
    assert len(images._row_groups) == 2


def test_a_changed_image_changes_its_hash(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, [{"image": {"bytes": jpeg(1), "path": "a.jpg"}, "pages": [], "question": ""}], 10)
    (ref,) = image_refs(next(read_rows([path]))["image"], "x")
    before = image_hash(ref)
    write_table(path, [{"image": {"bytes": jpeg(2), "path": "a.jpg"}, "pages": [], "question": ""}], 10)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # same size, newer file
    assert image_bytes(ref) == jpeg(2) and image_hash(ref) != before


class DecodingMock(MockAdapter):
    """The mock, opening every image as a real model does."""

    def generate(self, requests):
        out = super().generate(requests)
        for request, pred in zip(requests, out):
            try:
                for ref in request.images:
                    open_image(ref)
            except ImageError as exc:
                pred.text, pred.error = "", str(exc)
        return out


def test_bad_parquet_images_are_their_samples_errors(tmp_path):
    rows = [{"image": {"bytes": jpeg(0), "path": "good.jpg"}, "question": "is it?", "answer": "yes"},
            {"image": {"bytes": b"not an image", "path": "broken.jpg"}, "question": "is it?", "answer": "no"},
            {"image": {"bytes": None, "path": "empty.jpg"}, "question": "is it?", "answer": "no"}]
    folder = tmp_path / "pathvqa-hf"
    (folder / "data").mkdir(parents=True)
    schema = pa.schema([("image", IMAGE), ("question", pa.string()), ("answer", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "data" / "test-00000-of-00001.parquet")
    if "decoding-mock" not in ADAPTERS:
        ADAPTERS.register("decoding-mock", DecodingMock)
    card = tmp_path / "decoding.yaml"
    card.write_text("adapter: decoding-mock\n")
    run_dir, _ = execute(RunConfig(task="pathvqa", model=str(card), data_dir=folder,
                                   results_dir=tmp_path / "results", use_cache=False))
    errors = {r.id: r.error for r in read_samples(run_dir)}
    assert errors["0"] is None
    assert errors["1"].startswith("image cannot be decoded: broken.jpg")
    assert errors["2"].startswith("the row has no image bytes:") and "row group 0 row 2" in errors["2"]


def eager(refs: list[ImageRef]) -> list[ImageRef]:
    """The references as the loaders made them before: bytes in memory."""
    return [ImageRef(path=r.path, data=image_bytes(r)) for r in refs]


@pytest.mark.parametrize("batch_size", [1, 5])
def test_a_run_gives_the_same_results_as_with_the_bytes_in_memory(batch_size, tmp_path, monkeypatch):
    import medharness.tasks.medvqa_common as medvqa  # the HF parquet copies' reader

    folder = write_fixture("pathvqa-hf", tmp_path)

    def run(name: str):
        run_dir, record = execute(RunConfig(task="pathvqa", model="mock", data_dir=folder, batch_size=batch_size,
                                            results_dir=tmp_path / name, use_cache=False))
        rows = [(r.id, r.prediction, r.error, r.images, r.scores) for r in read_samples(run_dir)]
        return rows, record.metrics.model_dump(), record.spec.data_fingerprint

    lazy = run("lazy")
    lazy_image = medvqa.parquet_image
    monkeypatch.setattr(medvqa, "parquet_image", lambda row, name: (eager(lazy_image(row, name)[0]), lazy_image(row, name)[1]))
    assert run("eager") == lazy


def test_a_corrupt_parquet_file_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test-00000-of-00001.parquet").write_bytes(b"PAR1 cut short")
    with pytest.raises(UserError, match=r"test-00000-of-00001.parquet: not a readable parquet file .*re-download"):
        load("pathvqa", tmp_path)
