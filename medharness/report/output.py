"""Writing report files so that a reader never sees half of one.

Each file is written to a temporary file in the same folder (named after the final file and the
writing process) and renamed over the final name, which is atomic on one file system: a kill at
any moment leaves the previous complete file, or none. The next report removes temporary files
whose writer is no longer running.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

import pandas as pd

from medharness.results import disk_space

TEMP_SUFFIX = ".partial"
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)" + re.escape(TEMP_SUFFIX) + "$")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def write_file(path: Path, content: Union[str, bytes]) -> Path:
    """Write `content` to `path` through a same-folder temporary file and a rename; a full disk
    is one line (the previous file stays)."""
    path = Path(path)
    tmp = temp_path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with disk_space(path), open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary report files left by writers that were killed; returns what was removed."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for candidate in Path(folder).iterdir():
        match = TEMP_NAME.match(candidate.name)
        if match and candidate.is_file() and not process_alive(int(match["pid"])):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing it now, so an earlier write of ours was cut off
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def neutral_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, prefixed with ' so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV with every text cell safe to open in a spreadsheet."""
    safe = frame.copy()
    for column in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[column]) or pd.api.types.is_bool_dtype(safe[column])):
            safe[column] = safe[column].map(neutral_cell)
    safe.columns = [neutral_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False, lineterminator="\r\n")  # RFC 4180; a cell holding \r is then quoted
