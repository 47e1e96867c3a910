"""The files of a run: results/<run_id>/run.json (header and metrics) and samples.jsonl (one
scored sample per line, appended as samples finish)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sqlite3
import tempfile
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterator, Optional

from pydantic import ValidationError

from medharness.errors import UserError
from medharness.schema import RunRecord, SampleResult

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
CACHE_FILE = ".cache/responses.sqlite"
RUNS_LOCK = ".runs.lock"  # held while a process finds or creates its run folder
WRITER_LOCK = ".writer.lock"  # held by the one process that writes a run folder, for the run's life
TEMP_SUFFIX = ".tmp"


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


@contextmanager
def disk_space(path: Path) -> Iterator[None]:
    """A full disk (or quota) while writing `path` becomes one line: nothing written so far is
    lost, and the same command resumes once there is space."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise disk_full(path) from None
    except sqlite3.OperationalError as exc:
        if "disk is full" not in str(exc):
            raise
        raise disk_full(path) from None


def disk_full(path: Path) -> UserError:
    return UserError(f"disk full while writing {path}; free space and run the same command again")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so a killed process never
    leaves half a file under the final name (`remove_stale_temp` clears what a kill left)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with disk_space(path), os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    os.replace(tmp, path)


def remove_stale_temp(folder: Path) -> None:
    """Temp files of writes killed before their rename (only ever removed under the folder's
    writer lock, so no live write loses its file)."""
    patterns = [f".*{TEMP_SUFFIX}", f".{RUN_FILE}.*", f".{SAMPLES_FILE}.*"]  # the last two: older versions' names
    for tmp in {path for pattern in patterns for path in folder.glob(pattern)}:
        tmp.unlink(missing_ok=True)


class Locked(Exception):
    """The lock is held by another process; `holder` describes it (pid, host, since)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class FileLock:
    """An OS lock (flock) on `path`, released by the kernel when the process dies, so a killed
    run never leaves a stale lock. The holder writes its pid and host into the file, which
    is how a second process can say who holds it."""

    def __init__(self, path: Path, wait: bool = False) -> None:
        self.path = path
        self.fh: IO[str] = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise Locked(holder) from None
        self.fh.seek(0)
        self.fh.truncate()
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()} (since {since})")
        self.fh.flush()

    def release(self) -> None:
        if not self.fh.closed:
            self.fh.close()  # closing drops the flock

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_writer(run_dir: Path, name: str = WRITER_LOCK) -> FileLock:
    """Become the one writer of `run_dir` (or of one rank's part file under torchrun); a second
    process stops at once with one line naming the first."""
    try:
        return FileLock(run_dir / name)
    except Locked as held:
        raise UserError(
            f"{run_dir}: {held.holder} is already writing this run; wait for it to finish, or stop "
            "it and run the same command again to resume"
        ) from None


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


def read_lines(path: Path) -> list[SampleResult]:
    """All complete lines of a samples file; a last line cut off by a kill is ignored."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    out = []
    for number, line in enumerate(raw[: raw.rfind(b"\n") + 1].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SampleResult.model_validate_json(line))
        except ValidationError:
            raise UserError(f"{path}:{number}: not a valid sample line; the file was edited or corrupted") from None
    return out


def repair_lines(path: Path) -> None:
    """Make a samples file safe to append to, under its writer lock: keep the first complete
    line per id and drop a last line cut off by a kill, lines repeated by two writers (before
    runs were locked) and lines garbled by interleaved writes. What was dropped is reported;
    the samples it leaves undone are run again."""
    if not path.exists():
        return
    raw = path.read_bytes()
    kept: dict[str, bytes] = {}
    repeated = unreadable = 0
    for line in raw[: raw.rfind(b"\n") + 1].splitlines():
        if not line.strip():
            continue
        try:
            sample_id = SampleResult.model_validate_json(line).id
        except ValidationError:
            unreadable += 1
            continue
        if sample_id in kept:
            repeated += 1
        else:
            kept[sample_id] = line
    text = b"".join(line + b"\n" for line in kept.values())
    if text == raw:
        return
    if repeated or unreadable:
        warnings.warn(
            f"{path.name}: repaired: dropped {repeated} repeated and {unreadable} unreadable lines "
            f"(kept the first complete line per id; {len(kept)} samples kept)", stacklevel=2
        )
    write_atomic(path, text.decode("utf-8"))


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
