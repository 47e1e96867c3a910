"""The response cache: one embedded SQLite file per results folder, in WAL mode so several runs
(processes) can read and write it at once without corrupting it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Sequence

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


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._retry(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._retry(lambda: self.conn.execute(SCHEMA))

    def get_many(self, keys: Iterable[str]) -> dict[str, Prediction]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Prediction] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self.conn.execute(
                f"SELECT key, prediction FROM responses WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            found.update((k, Prediction.model_validate_json(p)) for k, p in rows)
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
                self.conn.execute("ROLLBACK")
                raise

        self._retry(write)

    def _retry(self, action, attempts: int = 20) -> None:  # type: ignore[no-untyped-def]
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
