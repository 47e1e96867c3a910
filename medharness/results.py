"""The files of a run: results/<run_id>/run.json (header and metrics) and samples.jsonl (one
scored sample per line, appended as samples finish)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from pydantic import ValidationError

from medharness.errors import UserError
from medharness.schema import RunRecord, SampleResult

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
CACHE_FILE = ".cache/responses.sqlite"


def check_writable(results_dir: Path) -> None:
    """Fail before any model work when results cannot be written."""
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(
            f"results folder {str(results_dir)!r} is not writable ({exc.strerror or exc}); "
            "pass --results with a folder you can write to"
        ) from None


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a killed process never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_record(run_dir: Path, record: RunRecord) -> None:
    write_atomic(run_dir / RUN_FILE, record.model_dump_json(indent=2))


def read_record(run_dir: Path) -> RunRecord:
    path = run_dir / RUN_FILE
    try:
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise UserError(f"{path}: not a readable run record ({type(exc).__name__}); delete or fix it") from None


def read_samples(run_dir: Path) -> list[SampleResult]:
    return read_lines(run_dir / SAMPLES_FILE)


def read_lines(path: Path, repair: bool = False) -> list[SampleResult]:
    """All complete lines of a samples file. A last line cut off by a kill is dropped (and cut
    from the file when `repair`, so that appending resumes on a clean line)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if repair and end != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    out = []
    for number, line in enumerate(raw[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SampleResult.model_validate_json(line))
        except ValidationError:
            raise UserError(f"{path}:{number}: not a valid sample line; the file was edited or corrupted") from None
    return out


def done_ids(run_dir: Path) -> set[str]:
    """Ids already scored in this run: samples.jsonl and any rank's part file (see distributed)."""
    paths = [run_dir / SAMPLES_FILE, *sorted(run_dir.glob("samples.rank*.jsonl"))]
    return {r.id for path in paths for r in read_lines(path)}


def iter_run_dirs(results_dir: Path) -> Iterator[Path]:
    if not results_dir.is_dir():
        return
    for child in sorted(results_dir.iterdir()):
        if (child / RUN_FILE).is_file():
            yield child


def find_resumable(results_dir: Path, spec_hash: str) -> Optional[Path]:
    """The newest unfinished run of the same spec: the same command started again resumes it."""
    candidates = []
    for run_dir in iter_run_dirs(results_dir):
        try:
            record = read_record(run_dir)
        except UserError:
            continue
        if record.spec_hash == spec_hash and record.status == "running":
            candidates.append((record.started, run_dir))
    return max(candidates)[1] if candidates else None
