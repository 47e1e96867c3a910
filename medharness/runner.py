"""card -> samples -> batches -> adapter.generate -> score -> aggregate -> write.

Every finished sample is appended to samples.jsonl at once, so a run killed at any moment
(SIGKILL included) resumes where it stopped when the same command is run again: the spec hash
finds the unfinished run, done ids are skipped, and each sample is scored exactly once.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from pydantic import ValidationError

from medharness import distributed
from medharness import results as files
from medharness.cards import load_model_card, load_task_card
from medharness.errors import UserError
from medharness.images import ImageError, check_image, image_hash
from medharness.metrics.base import Metric
from medharness.metrics.grouped import aggregate
from medharness.models.base import ModelAdapter
from medharness.models.judge import Judge, get_judge
from medharness.provenance import data_fingerprint, digest, git_commit, package_versions
from medharness.records import is_unicode, value_problem
from medharness.registry import ADAPTERS, METRICS, TASK_PLUGINS
from medharness.schema import (
    GenerationSettings, ModelCard, Prediction, Question, Request, RunRecord, RunSpec, Sample,
    SampleResult, TaskCard,
)
from medharness.store import ResponseCache, cache_key
from medharness.tasks.base import TaskPlugin, check_split, existing_folder

ProgressHook = Callable[[int, int], None]  # (samples done so far, total)
TRAIN_SPLIT = "train"


@dataclass
class RunConfig:
    task: str
    model: str
    data_dir: Optional[Path] = None
    split: Optional[str] = None
    limit: Optional[int] = None
    seed: int = 0
    batch_size: Optional[int] = None
    results_dir: Path = Path("results")
    selection_ratio: Optional[float] = None
    selection: Optional[str] = None
    levels: Optional[str] = None
    image_max_side: Optional[int] = None
    max_new_tokens: Optional[int] = None
    use_cache: bool = True
    resume: bool = True
    judge: Optional[str] = None
    model_card: Optional[ModelCard] = None  # given directly (score's replay card) instead of by name
    extra_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Everything resolved before the first model call."""

    config: RunConfig
    task_card: TaskCard
    plugin: TaskPlugin
    model_card: ModelCard
    metrics: list[Metric]
    split: str
    data_dir: Optional[Path]
    samples: list[Sample]
    generation: GenerationSettings
    options: dict[str, Any]
    judge: Optional[Judge] = None  # the judge of judged metrics, built from its card


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_data_dir(given: Optional[Path], card: TaskCard) -> Optional[Path]:
    if given is None and card.data_env and os.environ.get(card.data_env):
        given = Path(os.environ[card.data_env])
    return None if given is None else existing_folder(given, "the dataset (--data-dir)")


def generation_settings(task: TaskCard, model: ModelCard, config: RunConfig) -> GenerationSettings:
    """Task defaults, then the model card's overrides, then the command line's."""
    merged = task.generation.model_dump()
    merged.update(model.generation)
    for name in ("selection_ratio", "selection", "levels"):
        if getattr(config, name) is not None:
            merged[name] = getattr(config, name)
    if merged.get("selection") == "random":
        merged["seed"] = config.seed
    if config.max_new_tokens is not None:
        merged["max_new_tokens"] = config.max_new_tokens
    if config.image_max_side is not None:
        merged["image_max_side"] = config.image_max_side
    try:
        return GenerationSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(f"bad generation settings (task card, model card {model.name!r} or command line): "
                        f"{where}: {first['msg']} (got {first.get('input')!r})") from None


def prepare(config: RunConfig) -> Prepared:
    task_card = load_task_card(config.task)
    model_card = config.model_card or load_model_card(config.model)
    plugin = TASK_PLUGINS.get(task_card.format)(task_card)
    ADAPTERS.get(model_card.adapter).check_card(model_card)  # unknown adapter or option: fail before loading any data
    metrics = [METRICS.get(name) for name in task_card.metrics]
    split = config.split or task_card.split
    check_split(task_card, split)
    files.check_writable(config.results_dir)
    data_dir = resolve_data_dir(config.data_dir, task_card)
    samples = list(plugin.load(data_dir, split))
    if config.limit is not None:
        samples = samples[: config.limit]
    check_usable(task_card.name, split, samples)
    duplicates = len(samples) - len({s.id for s in samples})
    if duplicates:
        raise UserError(f"task {task_card.name!r}: {duplicates} duplicate sample ids in the data; check the data files")
    options = {**task_card.options, **config.extra_options}
    if config.judge:
        options["judge"] = config.judge
    for metric in metrics:
        metric.check(options)
    judge = get_judge(load_model_card(options["judge"])) if any(m.batch for m in metrics) else None
    return Prepared(
        config=config, task_card=task_card, plugin=plugin, model_card=model_card, metrics=metrics,
        split=split, data_dir=data_dir, samples=samples,
        generation=generation_settings(task_card, model_card, config), options=options, judge=judge,
    )


def check_usable(task: str, split: str, samples: Sequence[Sample]) -> None:
    """An empty dataset, or one whose every record is malformed, is a mistake to stop at, not a
    "complete" run of nothing."""
    if not samples:
        raise UserError(f"task {task!r}: the {split} split holds no samples; check the data folder and its files")
    if all(s.error and s.skip_reason == "malformed record" for s in samples):
        raise UserError(f"task {task!r}: none of the {len(samples)} records of the {split} split is usable; the first: {samples[0].error}")


def train_split(p: Prepared) -> list[Sample]:
    """The answered train questions, for adapters that learn from them (the baselines)."""
    name = p.model_card.name
    if TRAIN_SPLIT not in p.task_card.splits:
        raise UserError(f"task {p.task_card.name!r} has no train split; {name!r} needs one to learn from")
    samples = [s for s in p.plugin.load(p.data_dir, TRAIN_SPLIT) if s.references]
    if not samples:
        raise UserError(f"task {p.task_card.name!r}: the train split has no answered questions for {name!r} to learn from")
    return samples


def build_spec(p: Prepared, adapter: ModelAdapter) -> RunSpec:
    judged = {"judge_card": p.judge.card.model_dump(), "judge_fingerprint": p.judge.fingerprint} if p.judge else {}
    return RunSpec(
        task=p.task_card.name, task_version=p.task_card.version, task_format=p.task_card.format,
        split=p.split, data_source=p.plugin.data_source(p.data_dir),
        data_fingerprint=data_fingerprint(p.samples), model=p.model_card.name,
        model_card=p.model_card.model_dump(), model_fingerprint=adapter.fingerprint(),
        generation=p.generation, limit=p.config.limit, seed=p.config.seed,
        metric_definitions={m.name: m.definition for m in p.metrics},
        options={**p.options, **judged, "headline": p.task_card.headline, "group_by": p.task_card.group_by,
                 "lower_is_better": sorted(o for m in p.metrics if not m.higher_is_better for o in m.output_names())},
    )


def start_run_dir(
    results_dir: Path, spec: RunSpec, spec_hash: str, resume: bool, locks: ExitStack
) -> tuple[Path, RunRecord]:
    """Find the unfinished run of this spec (or make a new one) and become its one writer.
    Finding and locking happen under the results folder's lock, so two identical commands
    started together cannot both miss each other's folder or both resume one."""
    with files.FileLock(results_dir / files.RUNS_LOCK, wait=True):
        existing = files.find_resumable(results_dir, spec_hash) if resume else None
        if existing is not None:
            locks.enter_context(files.lock_writer(existing))
            files.remove_stale_temp(existing)
            files.repair_lines(existing / files.SAMPLES_FILE)  # before any rank reads it
            return existing, files.read_record(existing)
        return new_run_dir(results_dir, spec, spec_hash, locks)


def new_run_dir(results_dir: Path, spec: RunSpec, spec_hash: str, locks: ExitStack) -> tuple[Path, RunRecord]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    ratio = f"-r{spec.generation.selection_ratio:g}" if spec.generation.selection_ratio is not None else ""
    ratio += f"-{spec.generation.selection}" if spec.generation.selection is not None else ""
    ratio += f"-{spec.generation.levels}" if spec.generation.levels is not None else ""
    ratio += f"-px{spec.generation.image_max_side}" if spec.generation.image_max_side is not None else ""
    run_dir = results_dir / f"{spec.task}__{spec.model}{ratio}__{spec_hash[:8]}__{stamp}"
    run_dir.mkdir(parents=True)
    locks.enter_context(files.lock_writer(run_dir))
    record = RunRecord(
        run_id=run_dir.name, spec_hash=spec_hash, spec=spec, started=utcnow(),
        git_commit=git_commit(), packages=package_versions(),
    )
    files.write_record(run_dir, record)
    return run_dir, record


def image_names(sample: Sample, data_dir: Optional[Path]) -> list[str]:
    """Each image's path relative to the data folder (as recorded in samples.jsonl)."""
    names = []
    for ref in sample.images:
        if ref.data is not None or not ref.root or data_dir is None:
            names.append(ref.path)
        else:
            names.append(os.path.relpath(os.path.join(ref.root, ref.path), data_dir).replace(os.sep, "/"))
    return names


def score_sample(
    sample: Sample, request: Optional[Request], prediction: Prediction, metrics: Sequence[Metric], cached: bool,
    data_dir: Optional[Path] = None,
) -> SampleResult:
    """Model errors are scored as an empty answer: wrong, counted, never dropped. An answer
    that is not valid Unicode (a lone surrogate from a server's JSON) is one: it cannot be
    stored."""
    if not prediction.error and not is_unicode(prediction.text):
        prediction = prediction.model_copy(update={"error": f"the answer {ascii(prediction.text[:40])} is not valid Unicode (lone surrogate)"})
    text = "" if prediction.error else prediction.text
    prompt = request.prompt if request else ""
    return SampleResult(
        id=sample.id, prompt=prompt, prediction=text, references=sample.references,
        answer_type=sample.answer_type, choices=sample.choices, metadata=sample.metadata,
        images=image_names(sample, data_dir), scores={m.name: m.per_sample(text, sample) for m in metrics if m.per_sample is not None},
        outcome="model_error" if prediction.error else "scored",
        error=prediction.error, cached=cached, input_tokens=prediction.input_tokens,
        visual_tokens=prediction.visual_tokens, output_tokens=prediction.output_tokens,
        seconds=prediction.seconds, extra=prediction.extra,
        prompt_hash=hashlib.sha256(prompt.encode()).hexdigest()[:16],
        target_hash=digest(sample.references),
    )


def with_max_side(request: Request) -> Request:
    """The request with its images marked to be opened at most image_max_side pixels long
    (medharness.images.fit_long_side), so that every adapter sees the same smaller images."""
    side = request.generation.image_max_side
    if side is None:
        return request
    return request.model_copy(update={"images": [i.model_copy(update={"max_side": side}) for i in request.images]})


def skipped_result(sample: Sample, problem: ImageError) -> SampleResult:
    """A data error: listed with its reason and category, given no score. Fields that cannot
    be stored (text that is not valid Unicode) are left out."""
    if value_problem([sample.references, sample.choices or [], sample.metadata]):
        sample = Sample(id=sample.id)
    return SampleResult(
        id=sample.id, references=sample.references, answer_type=sample.answer_type,
        choices=sample.choices, metadata=sample.metadata, outcome="data_error",
        error=str(problem), skip_reason=problem.category, target_hash=digest(sample.references),
    )


def data_problem(sample: Sample) -> Optional[ImageError]:
    """Why the record is unusable, the same for every adapter (those that never open images
    too), or None: the loader's finding, else the image gate's. A loader that gives a reason
    without a category gets the gate's category, "missing image" when it found no image, else
    "malformed record"."""
    gate = None
    try:
        for ref in sample.images:
            check_image(ref)
    except ImageError as exc:
        gate = exc
    if not sample.error:
        text = value_problem([sample.question, sample.references, sample.choices or [], sample.metadata])
        return ImageError(f"record {sample.id}: {text}", "malformed record") if text else gate
    category = sample.skip_reason or (gate.category if gate else "malformed record" if sample.images else "missing image")
    return ImageError(sample.error, category)


@dataclass
class Plan:
    """One batch after the data gate and cache lookups: what is a data error, what the cache
    answers, what to run."""

    batch: Sequence[Sample]
    requests: dict[str, Request]
    skipped: dict[str, ImageError]
    keys: dict[str, str]
    hits: dict[str, Prediction]
    to_run: list[Request]


class BatchEvaluator:
    """Turns a batch of samples into scored results: cache lookups, model calls, scoring.

    `plan` is separate from `run` so that the runner can plan the next batch and let the
    adapter prefetch its inputs (decode and preprocess images) while the model works."""

    def __init__(self, p: Prepared, adapter: ModelAdapter, cache: Optional[ResponseCache]) -> None:
        self.p = p
        self.adapter = adapter
        self.cache = cache
        self.fingerprint = adapter.fingerprint()

    def plan(self, batch: Sequence[Sample]) -> Plan:
        skipped: dict[str, ImageError] = {}
        requests: dict[str, Request] = {}
        keys: dict[str, str] = {}
        for s in batch:
            problem = data_problem(s)
            if problem is not None:
                skipped[s.id] = problem
                continue
            requests[s.id] = request = with_max_side(self.p.plugin.request(s, self.p.generation))
            if self.cache is None:
                continue
            try:
                hashes = [image_hash(i) for i in request.images] if self.adapter.needs_images else []
            except ImageError as exc:  # the file changed since the gate saw it
                skipped[s.id] = exc
                del requests[s.id]
                continue
            keys[s.id] = cache_key(self.fingerprint, request, hashes)
        hits = self.cache.get_many(keys.values()) if self.cache and keys else {}
        to_run = [requests[s.id] for s in batch if s.id in requests and keys.get(s.id) not in hits]
        return Plan(batch, requests, skipped, keys, hits, to_run)

    def run(self, plan: Plan) -> list[SampleResult]:
        fresh = dict(zip([r.sample_id for r in plan.to_run], self.adapter.generate(plan.to_run) if plan.to_run else []))
        if self.cache is not None:
            self.cache.put_many({plan.keys[i]: pred for i, pred in fresh.items() if i in plan.keys and not pred.error})
        out = []
        for s in plan.batch:
            if s.id in plan.skipped:
                out.append(skipped_result(s, plan.skipped[s.id]))
                continue
            if s.id in fresh:
                pred, cached = fresh[s.id], False
            else:
                pred, cached = plan.hits[plan.keys[s.id]].model_copy(update={"sample_id": s.id}), True
            out.append(score_sample(s, plan.requests.get(s.id), pred, self.p.metrics, cached, self.p.data_dir))
        self.batch_score([r for r in out if r.outcome != "data_error"])
        return out

    def batch_score(self, results: list[SampleResult]) -> None:
        if not results:
            return
        for metric in self.p.metrics:
            if metric.batch is None:
                continue
            for result, (value, record) in zip(results, metric.batch(results, self.p.options, self.p.judge)):
                result.scores[metric.name] = value
                result.extra[metric.name] = record


def execute(config: RunConfig, progress: Optional[ProgressHook] = None) -> tuple[Path, RunRecord]:
    """Run (or resume) one task x model x settings; returns the run folder and its record.

    Under torchrun every rank evaluates its shard; rank 0 merges the parts and returns the
    finished record, the other ranks their unfinished one. Warnings raised on the way (a
    predictions file with unknown ids, Java missing for METEOR) are stored in run.json."""
    coordinator = distributed.current()
    with ExitStack() as locks:  # this process's writer locks, held until the run is written
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_dir, record, p, seconds = _execute(config, progress, coordinator, locks)
            coordinator.barrier()
            if not coordinator.is_main:
                return run_dir, record
            distributed.merge_parts(run_dir, [s.id for s in p.samples])
            distributed.merge_caches(config.results_dir)
        return run_dir, finalize(run_dir, record, p, seconds, [str(w.message) for w in caught])


def _execute(
    config: RunConfig, progress: Optional[ProgressHook], coordinator: distributed.Single, locks: ExitStack
) -> tuple[Path, RunRecord, Prepared, float]:
    started = time.perf_counter()
    p = prepare(config)
    adapter: ModelAdapter = ADAPTERS.get(p.model_card.adapter)(p.model_card)
    try:
        train = train_split(p) if adapter.needs_train else []
        adapter.prepare(train, [Question.of(s) for s in p.samples])
        spec = build_spec(p, adapter)
        spec_hash = digest(spec.model_dump())
        run_dir, record = coordinator.agree(
            lambda: start_run_dir(config.results_dir, spec, spec_hash, config.resume, locks))
        cache = None
        if config.use_cache and adapter.use_cache:
            own, main = config.results_dir / coordinator.cache_file(), config.results_dir / files.CACHE_FILE
            cache = ResponseCache(own, also_read=main if own != main else None)
        mine = coordinator.pick(p.samples)
        part = run_dir / coordinator.part_file()
        if part.name != files.SAMPLES_FILE:  # a torchrun rank: one writer per part file too
            locks.enter_context(files.lock_writer(run_dir, f".{part.name}.lock"))
            files.repair_lines(part)
        done = files.done_ids(run_dir)
        todo = [s for s in mine if s.id not in done]
        evaluate = BatchEvaluator(p, adapter, cache)
        size = config.batch_size or p.model_card.batch_size
        count = len(mine) - len(todo)
        if progress:
            progress(count, len(mine))
        batches = [todo[start : start + size] for start in range(0, len(todo), size)]
        with open(part, "a", encoding="utf-8") as out:
            upcoming = evaluate.plan(batches[0]) if batches else None
            for index in range(len(batches)):
                current = upcoming
                upcoming = evaluate.plan(batches[index + 1]) if index + 1 < len(batches) else None
                if upcoming is not None and upcoming.to_run:
                    adapter.prefetch(upcoming.to_run)
                scored = evaluate.run(current)
                with files.disk_space(part):
                    out.write("".join(r.model_dump_json() + "\n" for r in scored))
                    out.flush()
                count += len(scored)
                if progress:
                    progress(count, len(mine))
        if cache is not None:
            cache.close()
    finally:
        adapter.close()
    return run_dir, record, p, time.perf_counter() - started


def finalize(run_dir: Path, record: RunRecord, p: Prepared, seconds: float, messages: Sequence[str] = ()) -> RunRecord:
    """Aggregate every sample line of the run (this attempt's and earlier ones') into run.json."""
    scored = files.read_samples(run_dir)
    ids = [r.id for r in scored]
    expected = {s.id for s in p.samples}
    if len(ids) != len(set(ids)) or set(ids) != expected:
        raise RuntimeError(
            f"{run_dir}: samples.jsonl holds {len(ids)} lines for {len(expected)} samples; "
            "the run folder was changed by another process"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = aggregate(scored, p.task_card.metrics, p.task_card.group_by, p.task_card.min_group_size, p.config.seed)
    skipped = Counter(r.skip_reason or "malformed record" for r in scored if r.outcome == "data_error")
    record = record.model_copy(update={
        "status": "complete", "finished": utcnow(), "seconds": round(seconds, 3),
        "n_samples": metrics.counts["samples"], "n_errors": metrics.counts["errors"], "n_cached": metrics.counts["cached"],
        "n_skipped": sum(skipped.values()), "skipped": dict(sorted(skipped.items())),
        "metrics": metrics, "warnings": list(dict.fromkeys([*messages, *(str(w.message) for w in caught)])),
    })
    files.write_record(run_dir, record)
    return record
