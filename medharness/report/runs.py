"""Read results/ and decide which runs count.

A run is results/<run_id>/run.json (a RunRecord) plus samples.jsonl (SampleResults). Runs are
grouped by what they measured: the evaluation (task, task version, split, data, sample limit,
metric definitions, headline metric) and the system (model and generation settings). Within
one evaluation+system pair the newest complete run counts; older complete runs are listed as
superseded, unfinished ones as incomplete. Two evaluations are never merged, so a change of
task version or of a metric definition shows up as a separate column instead of a silent mix.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from medharness.errors import SkippedWarning, UserError
from medharness.schema import RunRecord, SampleResult


@dataclass(frozen=True)
class Evaluation:
    """What was measured: runs with equal Evaluations may share a leaderboard column."""

    task: str
    task_version: str
    split: str
    data_fingerprint: str
    limit: Optional[int]
    headline: str
    definitions: tuple[tuple[str, str], ...]

    def definitions_id(self) -> str:
        text = json.dumps(self.definitions)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class System:
    """What produced the answers: model plus the generation settings of the run."""

    model: str
    generation: tuple[tuple[str, Any], ...]
    random_weights: bool

    @property
    def selection_ratio(self) -> Optional[float]:
        return dict(self.generation).get("selection_ratio")

    def setting(self, name: str) -> Any:
        """A generation setting; None when unset or absent (runs from before the setting existed)."""
        return dict(self.generation).get(name)


@dataclass
class Run:
    record: RunRecord
    folder: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @cached_property
    def headline(self) -> str:
        return headline_metric(self.record)

    @cached_property
    def evaluation(self) -> Evaluation:
        spec = self.record.spec
        return Evaluation(
            task=spec.task,
            task_version=spec.task_version,
            split=spec.split,
            data_fingerprint=spec.data_fingerprint,
            limit=spec.limit,
            headline=self.headline,
            definitions=tuple(sorted(spec.metric_definitions.items())),
        )

    @cached_property
    def system(self) -> System:
        spec = self.record.spec
        generation = spec.generation.model_dump(mode="json")
        frozen = tuple(sorted((k, _freeze(v)) for k, v in generation.items()))
        return System(spec.model, frozen, bool(spec.model_card.get("random_weights", False)))

    @cached_property
    def when(self) -> datetime:
        return _parse_time(self.record.finished or self.record.started)

    @cached_property
    def samples(self) -> list[SampleResult]:
        """Rows of samples.jsonl; unreadable lines (not UTF-8, not JSON, not a sample result)
        are skipped, counted in `warnings` and in one SkippedWarning."""
        path = self.folder / "samples.jsonl"
        if not path.is_file():  # also refuses a FIFO or device, which would block the read
            self.warnings.append(f"{self.run_id}: samples.jsonl is missing")
            return []
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.warnings.append(f"{self.run_id}: samples.jsonl cannot be read ({exc.strerror or exc})")
            return []
        rows, bad = [], []
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(SampleResult.model_validate_json(line))
            except ValidationError:  # pydantic's JSON parser also rejects bad UTF-8 and deep nesting
                bad.append(number)
        if bad:
            message = (f"{self.run_id}: skipped {len(bad)} unreadable line(s) of samples.jsonl "
                       f"(line {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})")
            self.warnings.append(message)
            warnings.warn(message, SkippedWarning, stacklevel=2)
        return rows


@dataclass
class RunSet:
    current: list[Run]
    superseded: list[tuple[Run, Run]]  # (older run, the run that replaced it)
    incomplete: list[Run]
    unreadable: list[tuple[Path, str]]

    def evaluations(self, tasks: Optional[list[str]] = None) -> list[Evaluation]:
        """Distinct evaluations of the current runs, ordered by task name."""
        seen = {run.evaluation: None for run in self.current if tasks is None or run.evaluation.task in tasks}
        return sorted(seen, key=lambda e: (e.task, e.task_version, e.split, e.definitions_id(), e.data_fingerprint, e.limit or 0))

    def runs_for(self, evaluation: Evaluation) -> list[Run]:
        return sorted((r for r in self.current if r.evaluation == evaluation), key=lambda r: system_sort_key(r.system))


def headline_metric(record: RunRecord) -> str:
    """The task's headline: spec.options["headline"], else the first defined metric."""
    spec = record.spec
    chosen = spec.options.get("headline")
    if isinstance(chosen, str) and chosen:
        return chosen
    for name in list(spec.metric_definitions) + list(record.metrics.overall):
        return name
    return "(no metric)"


def system_sort_key(system: System) -> tuple:
    ratio = system.selection_ratio
    return (system.model, ratio is not None, ratio or 0.0, system.generation.__repr__())


def load_runs(results_dir: Path) -> RunSet:
    """All runs under results_dir, split into current, superseded, incomplete and unreadable."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} does not exist: run `medharness run` first or pass --results")
    runs: list[Run] = []
    unreadable: list[tuple[Path, str]] = []
    for path in sorted(results_dir.glob("*/run.json")):
        if not path.is_file():  # a FIFO or device would block the read
            unreadable.append((path, "not a regular file"))
            continue
        try:
            record = RunRecord.model_validate_json(path.read_bytes())
        except OSError as exc:
            unreadable.append((path, f"cannot read: {exc.strerror or exc}"))
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "run.json"
            unreadable.append((path, f"not a run record ({where}: {first['msg']})"))
            continue
        runs.append(Run(record, path.parent))
    if unreadable:
        path, reason = unreadable[0]
        warnings.warn(f"skipped {len(unreadable)} unreadable run(s) under {results_dir} (first: {path}: {reason})",
                      SkippedWarning, stacklevel=2)
    if not runs:
        raise UserError(f"no runs found in {results_dir}: run `medharness run --task T --model M` first")
    return select_current(runs, unreadable)


def select_current(runs: list[Run], unreadable: list[tuple[Path, str]]) -> RunSet:
    incomplete = [r for r in runs if r.record.status != "complete"]
    groups: dict[tuple[Evaluation, System], list[Run]] = {}
    for run in runs:
        if run.record.status == "complete":
            groups.setdefault((run.evaluation, run.system), []).append(run)
    current, superseded = [], []
    for members in groups.values():
        members.sort(key=lambda r: (r.when, r.run_id), reverse=True)
        newest = members[0]
        current.append(newest)
        superseded.extend((older, newest) for older in members[1:])
    return RunSet(current, superseded, incomplete, unreadable)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
