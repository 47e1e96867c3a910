"""The response cache: one embedded SQLite file per results folder, in WAL mode so several runs
(processes) can read and write it at once without corrupting it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from pydantic import ValidationError

from medharness.results import disk_space
from medharness.schema import Prediction, Request

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    prediction TEXT NOT NULL,
    created REAL NOT NULL
)
"""
BUSY_TIMEOUT_MS = 60_000


def cache_key(model_fingerprint: str, request: Request, image_hashes: Sequence[str]) -> str:
    """Everything that determines a response: model, prompt, images, choices, settings."""
    blob = json.dumps(
        [model_fingerprint, request.prompt, list(image_hashes), request.choices,
         request.generation.model_dump()],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def move_aside(path: Path) -> Path:
    """Keep a corrupt database for inspection under a new name, with its WAL and shared memory."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            source.replace(Path(str(target) + suffix))
    return target


class ResponseCache:
    """`also_read`: a second cache consulted (read only) on a miss; a multi-node rank writes its
    own file and reads the main one, which only rank 0 writes, after every rank is done."""

    def __init__(self, path: Path, also_read: Optional[Path] = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.conn = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # locked or busy past the timeout: not corruption
            warnings.warn(f"response cache {path} is unreadable ({exc}); moved it aside to "
                          f"{move_aside(path).name} and started an empty cache", stacklevel=2)
            self.conn = self._open()
        self.fallback = None
        if also_read is not None and also_read.exists():
            self.fallback = sqlite3.connect(f"{also_read.resolve().as_uri()}?mode=ro", uri=True,
                                            timeout=BUSY_TIMEOUT_MS / 1000)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with disk_space(self.path):
                self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                conn.execute("PRAGMA synchronous=NORMAL")
                self._retry(lambda: conn.execute(SCHEMA))
            conn.execute("SELECT key FROM responses LIMIT 1").fetchone()  # a damaged file fails here
        except BaseException:
            conn.close()
            raise
        return conn

    def get_many(self, keys: Iterable[str]) -> dict[str, Prediction]:
        keys = list(dict.fromkeys(keys))
        found = self._lookup(self.conn, keys)
        if self.fallback is not None:
            found.update(self._lookup(self.fallback, [k for k in keys if k not in found]))
        return found

    def _lookup(self, conn: sqlite3.Connection, keys: list[str]) -> dict[str, Prediction]:
        """Rows that cannot be read are misses (the sample is run again), with one warning."""
        found: dict[str, Prediction] = {}
        bad = 0
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            try:
                rows = conn.execute(
                    f"SELECT key, prediction FROM responses WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                warnings.warn(f"response cache {self.path}: a damaged page could not be read ({exc}); "
                              "its samples are run again", stacklevel=3)
                continue
            for key, text in rows:
                try:
                    found[key] = Prediction.model_validate_json(text)
                except (ValidationError, ValueError):
                    bad += 1
        if bad:
            warnings.warn(f"response cache {self.path}: skipped unreadable rows; their samples are run again",
                          stacklevel=3)
        return found

    def put_many(self, items: dict[str, Prediction]) -> None:
        if not items:
            return
        now = time.time()
        rows = [(k, p.model_dump_json(), now) for k, p in items.items()]

        def write() -> None:
            # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on the busy
            # timeout instead of failing halfway through a transaction.
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", rows)
                self.conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors (a full disk among them);
                # a second ROLLBACK would hide the real error behind "no transaction is active".
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

        with disk_space(self.path):
            self._retry(write)

    @staticmethod
    def _retry(action: Callable[[], object], attempts: int = 20) -> None:
        for attempt in range(attempts):
            try:
                action()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def close(self) -> None:
        self.conn.close()
        if self.fallback is not None:
            self.fallback.close()
