"""Reading the Hugging Face copies of datasets: snapshots of the files a split needs (failing
at once, in one line, when offline or the hub is unreachable) and the parquet layout."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import urlparse

from medharness.errors import UserError
from medharness.schema import ImageRef, ParquetCell, TaskCard

HUB_PROBE_SECONDS = 3.0


Row = dict[str, Any]


def parquet_rows(root: Path, hf_split: str) -> Iterator[Row]:
    """Rows of the Hugging Face parquet layout `data/<split>-*.parquet`, in file order."""
    files = sorted((root / "data").glob(f"{hf_split}-*.parquet"))
    if not files:
        raise UserError(f"{root}: no data/{hf_split}-*.parquet files; is this the Hugging Face copy of the dataset?")
    return read_rows(files)


def read_rows(files: list[Path]) -> Iterator[Row]:
    for path in files:
        try:
            yield from lazy_rows(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"{path}: not a readable parquet file ({exc}); re-download the split") from None


def lazy_rows(file: Path) -> Iterator[Row]:
    """One parquet file's rows, row group by row group, with the image bytes left in the file.

    An image column (`{bytes, path}` structs, or lists of them) is read without its bytes: each
    image becomes `{"path": ..., "cell": ParquetCell}`, which `medharness.images` reads when the
    image's batch is planned. A missing image (a null struct) stays None."""
    import pyarrow.parquet as pq

    location = str(file.resolve())
    with pq.ParquetFile(file) as parquet:
        leaves = [parquet.schema.column(i).path for i in range(len(parquet.schema))]
        images = {leaf.split(".")[0]: leaf for leaf in leaves if is_image_bytes(leaf, leaves)}
        columns = [name if name not in images else images[name].removesuffix("bytes") + "path"
                   for name in parquet.schema_arrow.names]
        for group in range(parquet.num_row_groups):
            for row, values in enumerate(parquet.read_row_group(group, columns=columns).to_pylist()):
                for name, leaf in images.items():
                    cell = ParquetCell(file=location, row_group=group, row=row, column=leaf)
                    values[name] = lazy_image(values.get(name), cell)
                yield values


def is_image_bytes(leaf: str, leaves: list[str]) -> bool:
    """The bytes of a top-level image column, `image.bytes`, or of a list of images,
    `images.list.element.bytes`, beside their `path`."""
    parts = leaf.split(".")
    shaped = len(parts) == 2 or (len(parts) == 4 and parts[1] == "list")
    return shaped and parts[-1] == "bytes" and ".".join([*parts[:-1], "path"]) in leaves


def lazy_image(value: Any, cell: ParquetCell) -> Any:
    if isinstance(value, list):
        return [lazy_image(item, cell.model_copy(update={"item": i})) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return None
    return {"path": value.get("path"), "cell": cell}


def parquet_image(row: Row, fallback_name: str) -> tuple[list[ImageRef], Optional[str]]:
    image = row.get("image")
    if not isinstance(image, dict) or not image.get("cell"):
        return [], "the row has no image bytes"
    return [ImageRef(path=image.get("path") or fallback_name, parquet=image["cell"])], None


def has_parquet_layout(root: Path) -> bool:
    return any((root / "data").glob("*.parquet"))


def offline_requested() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(endpoint: str) -> bool:
    """One quick TCP connect, so an unreachable hub fails at once instead of after retries."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False


def hf_snapshot(card: TaskCard, patterns: list[str], docs: str) -> Path:
    """The cached Hugging Face copy of the card's dataset, downloading it when the hub can be
    reached; otherwise one line saying where to put a local copy (`docs` explains the layout)."""
    task, repo, revision, data_env = card.name, card.hf_dataset, card.hf_revision, card.data_env
    where = f"pass --data-dir DIR{f' or set {data_env}' if data_env else ''} to a local copy (see {docs})"
    if not repo:
        raise UserError(f"task {task!r} has no Hugging Face copy; {where}")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    args = dict(repo_id=repo, repo_type="dataset", revision=revision, allow_patterns=patterns)
    try:
        return Path(snapshot_download(**args, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if offline_requested():
        raise UserError(f"{task}: no local data and Hugging Face is switched off (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE); {where}")
    if not hub_reachable(constants.ENDPOINT):
        raise UserError(f"{task}: no local data and the Hugging Face hub ({constants.ENDPOINT}) cannot be reached; {where}")
    try:
        return Path(snapshot_download(**args))
    except Exception as exc:  # hub errors come in many types; the user needs the reason and the way out
        raise UserError(f"{task}: downloading {repo}@{revision} failed ({type(exc).__name__}: {exc}); {where}") from None
