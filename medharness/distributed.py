"""Data-parallel evaluation under torchrun: each rank evaluates a disjoint, deterministic shard
(every world-size-th sample in dataset order), writes its own part file as it goes, and rank 0
merges the parts into one run identical to a single-process run of the same command.

Single-process runs use `Single`, which does nothing; `current()` picks the right one from the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE). Multi-node runs
need the results folder on a filesystem all nodes share; their response caches are per rank
(SQLite must not be shared over a network filesystem) and merged into the main cache by rank 0.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

from medharness import results as files
from medharness.store import ResponseCache, move_aside

T = TypeVar("T")


class Single:
    rank = 0
    world = 1
    is_main = True

    def pick(self, items: Sequence[T]) -> list[T]:
        return list(items)

    def part_file(self) -> str:
        return files.SAMPLES_FILE

    def cache_file(self) -> str:
        return files.CACHE_FILE

    def agree(self, make: Callable[[], T]) -> T:
        """rank 0 computes a value (the run folder), every rank gets it."""
        return make()

    def barrier(self) -> None:
        pass


class TorchRun(Single):
    def __init__(self) -> None:
        import torch
        import torch.distributed as dist

        self.dist = dist
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.is_main = self.rank == 0
        self.multi_node = int(os.environ.get("LOCAL_WORLD_SIZE", self.world)) != self.world
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        if not dist.is_initialized():
            # gloo carries the few small coordination messages; models use their own devices.
            dist.init_process_group("gloo")

    def pick(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world])

    def part_file(self) -> str:
        return f"samples.rank{self.rank:04d}.jsonl"

    def cache_file(self) -> str:
        if self.multi_node:
            return files.CACHE_FILE.replace(".sqlite", f".rank{self.rank:04d}.sqlite")
        return files.CACHE_FILE

    def agree(self, make: Callable[[], T]) -> T:
        box: list[Optional[T]] = [make() if self.is_main else None]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def barrier(self) -> None:
        self.dist.barrier()


_current: Optional[Single] = None


def current() -> Single:
    global _current
    if _current is None:
        _current = TorchRun() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else Single()
    return _current


def merge_parts(run_dir: Path, order: Sequence[str]) -> None:
    """Fold every rank's part file into samples.jsonl, in dataset order, then remove the parts.
    Written atomically: a kill during the merge leaves the parts, and the next run merges again."""
    parts = sorted(run_dir.glob("samples.rank*.jsonl"))
    if not parts:
        return
    position = {sample_id: i for i, sample_id in enumerate(order)}
    rows = {r.id: r for r in files.read_samples(run_dir)}
    for part in parts:
        rows.update((r.id, r) for r in files.read_lines(part))
    ordered = sorted(rows.values(), key=lambda r: position.get(r.id, len(position)))
    files.write_atomic(run_dir / files.SAMPLES_FILE, "".join(r.model_dump_json() + "\n" for r in ordered))
    for part in parts:
        part.unlink()


def merge_caches(results_dir: Path) -> None:
    """Copy the per-rank caches of a multi-node run into the main cache, then remove them.
    A part is removed only after its rows are committed to the main cache's own table (created
    first: unqualified, `responses` would name the attached part's table when main has none)."""
    main = results_dir / files.CACHE_FILE
    parts = sorted(main.parent.glob("responses.rank*.sqlite"))
    if not parts:
        return
    ResponseCache(main).close()
    for part in parts:
        conn = sqlite3.connect(main, timeout=60, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS part", (str(part),))
            with files.disk_space(main):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR IGNORE INTO main.responses SELECT * FROM part.responses")
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            warnings.warn(f"response cache {part} is unreadable ({exc}); moved it aside to "
                          f"{move_aside(part).name}; its responses are computed again next time", stacklevel=2)
            continue
        finally:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(part) + suffix).unlink(missing_ok=True)
