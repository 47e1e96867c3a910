"""`medharness view`: one self-contained HTML page per evaluation that shows every sample with
its image, question, gold answers and each system's answer and scores, with filters.

The systems are the leaderboard's (the newest complete run per system and settings, from
`runs.py`). Images are opened through `medharness.images` from the paths samples.jsonl records,
re-encoded as small JPEGs once per distinct content (sha256) and embedded, or written to a
sidecar folder next to the page when they would make it too large. All text from runs is made
visible (`visible`) and travels as JSON in a non-executable script element; the page's script
puts it into the DOM with textContent only.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from PIL import Image

from medharness.errors import UserError
from medharness.images import ImageError, image_hash, open_image
from medharness.metrics.grouped import group_values
from medharness.report.analysis import check_tasks
from medharness.report.document import visible
from medharness.report.html import esc
from medharness.report.explorer_page import SCRIPT, STYLE, csp
from medharness.report.labels import evaluation_labels, run_labels
from medharness.report.links import page_name
from medharness.report.output import remove_stale_temps, write_file
from medharness.report.runs import Evaluation, Run, load_runs
from medharness.schema import ImageRef, SampleResult
from medharness.tasks.base import local_data_folder

THUMB_SIDE = 160
LARGE_SIDE = 512
# Above this many bytes of encoded images the page would grow past ~30 MB (base64), so the
# images go into a sidecar folder instead.
INLINE_LIMIT = 24_000_000
FILTER_KEYS = ("modality", "organ", "question_type", "answer_type", "content_type", "language")
SHOWN_FIRST = ("modality", "modality_source", "organ", "question_type", "answer_type")


@dataclass
class Thumbnails:
    """Re-encoded images, one per distinct content; `refs` maps a file to its position."""

    encoded: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (content hash, thumb, large)
    by_hash: dict[str, int] = field(default_factory=dict)
    refs: dict[tuple[str, str], Union[int, str]] = field(default_factory=dict)

    def add(self, root: str, path: str) -> Union[int, str]:
        """The image's position, or the reason it cannot be shown."""
        key = (root, path)
        if key not in self.refs:
            self.refs[key] = self._encode(ImageRef(root=root, path=path))
        return self.refs[key]

    def _encode(self, ref: ImageRef) -> Union[int, str]:
        try:
            digest = image_hash(ref)
            if digest not in self.by_hash:
                picture = open_image(ref)
                self.by_hash[digest] = len(self.encoded)
                self.encoded.append((digest, jpeg(picture, THUMB_SIDE), jpeg(picture, LARGE_SIDE)))
        except ImageError as exc:
            return visible(str(exc))
        return self.by_hash[digest]

    def size(self) -> int:
        return sum(len(t) + len(l) for _, t, l in self.encoded)


def jpeg(picture: Image.Image, side: int) -> bytes:
    """A new JPEG at most `side` pixels on its long side (never the original bytes)."""
    copy = picture.copy()
    copy.thumbnail((side, side))
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def outcome_of(row: SampleResult) -> str:
    """scored, model_error or data_error; rows from before outcomes were recorded read their
    error as a model error."""
    outcome = getattr(row, "outcome", "scored") or "scored"
    return "model_error" if outcome == "scored" and row.error else outcome


def image_root(run: Run, data_dir: Optional[Path]) -> Optional[str]:
    if data_dir is not None:
        return str(data_dir)
    folder = local_data_folder(run.record.spec.data_source)
    return folder if folder is not None and Path(folder).is_dir() else None


def image_cells(row: SampleResult, run: Run, data_dir: Optional[Path], thumbs: Thumbnails) -> tuple[list, Optional[str]]:
    if not row.images:
        return [], "no image paths recorded in this run (written by an older version, or a text-only task)"
    root = image_root(run, data_dir)
    if root is None:
        where = run.record.spec.data_source
        return [], visible(f"images are not in a folder here (data {where}); pass --data-dir with the dataset's folder")
    return [thumbs.add(root, path) for path in row.images], None


def metadata_pairs(row: SampleResult) -> tuple[list[list[str]], list[list[str]]]:
    """(the main keys, every other key) as [key, value] text pairs."""
    meta = dict(row.metadata)
    if row.answer_type and "answer_type" not in meta:
        meta["answer_type"] = row.answer_type

    def pair(key: str) -> list[str]:
        value = meta[key]
        return [visible(str(key)), visible(", ".join(map(str, value)) if isinstance(value, list) else str(value))]

    return [pair(k) for k in SHOWN_FIRST if k in meta], [pair(k) for k in sorted(meta) if k not in SHOWN_FIRST]


def answer(row: SampleResult, headline: str, metrics: list[str]) -> dict[str, Any]:
    scores = {m: round(v, 6) for m, v in row.scores.items() if v is not None}
    first = next((scores[m] for m in [headline, *metrics] if m in scores), None)
    cell: dict[str, Any] = {"t": visible(row.prediction), "s": scores, "v": first, "o": outcome_of(row)}
    if row.error:
        cell["e"] = visible(row.error)
    reason = getattr(row, "skip_reason", None)
    if reason:
        cell["r"] = visible(reason)
    return cell


def score_names(members: list[Run], headline: str) -> list[str]:
    names = {m for run in members for row in run.samples for m, v in row.scores.items() if v is not None}
    ordered = [m for run in members for m in run.record.spec.metric_definitions if m in names]
    return list(dict.fromkeys([m for m in [headline] if m in names] + ordered + sorted(names)))


def page_data(evaluation: Evaluation, members: list[Run], data_dir: Optional[Path], thumbs: Thumbnails) -> dict[str, Any]:
    labels = run_labels(members)
    by_run = [{row.id: row for row in run.samples} for run in members]
    order = list(dict.fromkeys(row.id for run in sorted(members, key=lambda r: -len(r.samples)) for row in run.samples))
    metrics = score_names(members, evaluation.headline)
    keys = list(dict.fromkeys([*FILTER_KEYS, *(k for r in members for k in r.record.spec.options.get("group_by") or [] if isinstance(k, str))]))
    counts: dict[str, dict[str, int]] = {k: {} for k in keys}
    samples = []
    for sample_id in order:
        holders = [i for i, rows in enumerate(by_run) if sample_id in rows]
        owner = next((i for i in holders if by_run[i][sample_id].prompt), holders[0])  # a skipped row has no prompt
        base = by_run[owner][sample_id]
        groups = {k: [visible(v) for v in group_values(base, k)] for k in keys}
        for key, values in groups.items():
            for value in values:
                counts[key][value] = counts[key].get(value, 0) + 1
        main, more = metadata_pairs(base)
        images, note = image_cells(base, members[owner], data_dir, thumbs)
        samples.append({
            "id": visible(sample_id), "q": visible(base.prompt), "gold": [visible(g) for g in base.references],
            "meta": main, "more": more, "groups": groups, "img": images, "img_note": note,
            "ans": [answer(rows[sample_id], evaluation.headline, metrics) if sample_id in rows else None for rows in by_run],
        })
    shown_keys = [k for k in keys if set(counts[k]) - {"(missing)"}]
    for s in samples:
        s["groups"] = {k: s["groups"][k] for k in shown_keys}
    return {
        "headline": visible(evaluation.headline), "metrics": [visible(m) for m in metrics],
        "per_sample_headline": evaluation.headline in metrics,
        "systems": [{"label": visible(labels[r.run_id]), "run_id": visible(r.run_id)} for r in members],
        "keys": [{"key": visible(k), "values": sorted(counts[k].items())} for k in shown_keys],
        "samples": samples,
    }


def embed_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its script element or open a comment: <, > and & as \\u escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def image_sources(thumbs: Thumbnails, page: Path) -> tuple[list[dict[str, str]], Optional[str]]:
    """Each image as data: URLs, or, above INLINE_LIMIT, as files in <page>.images/ (written
    once per content hash); returns the sources and the sidecar folder's name."""
    if thumbs.size() <= INLINE_LIMIT:
        def url(data: bytes) -> str:
            return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        return [{"t": url(t), "l": url(l)} for _, t, l in thumbs.encoded], None
    folder = page.with_name(page.stem + ".images")
    folder.mkdir(exist_ok=True)
    sources = []
    for digest, thumb, large in thumbs.encoded:
        names = {}
        for kind, data in (("t", thumb), ("l", large)):
            target = folder / f"{digest[:24]}-{kind}.jpg"
            if not target.exists():
                write_file(target, data)
            names[kind] = f"{folder.name}/{target.name}"
        sources.append(names)
    return sources, folder.name


def render_page(title: str, notes: list[str], data: dict[str, Any], sidecar: Optional[str]) -> str:
    total = len(data["samples"])
    paragraphs = "".join(f"<p class=\"note\">{esc(n)}</p>" for n in notes)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{esc(csp(sidecar is not None))}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n{paragraphs}\n<div id=\"controls\"></div>\n"
        f"<p><b id=\"count\">{total}</b> of {total} samples match the filters.</p>\n<div id=\"summary\"></div>\n"
        "<div id=\"pager\"><button id=\"prev\" type=\"button\">previous</button><span id=\"pageinfo\"></span>"
        "<button id=\"next\" type=\"button\">next</button></div>\n"
        "<table class=\"samples\"><thead id=\"thead\"></thead><tbody id=\"tbody\"></tbody></table>\n"
        "<div id=\"viewer\"><img id=\"big\" alt=\"larger image\"></div>\n"
        f"<script type=\"application/json\" id=\"explorer-data\">{embed_json(data)}</script>\n</body>\n</html>\n"
    )


def page_notes(evaluation: Evaluation, members: list[Run], sidecar: Optional[str]) -> list[str]:
    notes = [
        f"Task {evaluation.task} version {evaluation.task_version}, split {evaluation.split}; systems: the newest "
        "complete run of each model and settings, as on the leaderboard. Correct / wrong use each sample's "
        f"{evaluation.headline} score (or its first per-sample score where {evaluation.headline} does not apply): "
        "1 is correct, 0 wrong, anything between partly. The table above the samples counts, per system, the "
        f"samples that match the filters: its n and mean are the leaderboard's n and {evaluation.headline} for the "
        "same samples. Skipped records (data errors) are in no n; model errors count as wrong. Values x100.",
    ]
    if sidecar:
        notes.append(f"Images are in the folder {sidecar} next to this page (too many to embed); keep the two together.")
    return notes


def write_explorers(
    results_dir: Path, out_dir: Path, tasks: Optional[list[str]] = None,
    out_file: Optional[Path] = None, data_dir: Optional[Path] = None,
) -> list[Path]:
    """Write one explorer page per evaluation (task and version); returns the pages."""
    runs = load_runs(results_dir)
    check_tasks(runs, tasks)
    evaluations = runs.evaluations(tasks)
    if not evaluations:
        raise UserError("no complete runs to show: run `medharness run --task T --model M` first")
    if out_file is not None and len(evaluations) > 1:
        names = ", ".join(evaluation_labels(evaluations).values())
        raise UserError(f"--out names one file but there are {len(evaluations)} pages ({names}); pass --task, or give --out a folder")
    if data_dir is not None and len({e.task for e in evaluations}) > 1:
        raise UserError("--data-dir names one dataset; pass --task with it")
    labels = evaluation_labels(evaluations)
    written = []
    for evaluation in evaluations:
        page = Path(out_file) if out_file is not None else Path(out_dir) / page_name(labels[evaluation])
        page.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(page.parent)
        members = runs.runs_for(evaluation)
        thumbs = Thumbnails()
        data = page_data(evaluation, members, data_dir, thumbs)
        data["images"], sidecar = image_sources(thumbs, page)
        title = f"{labels[evaluation]}: samples and answers"
        written.append(write_file(page, render_page(title, page_notes(evaluation, members, sidecar), data, sidecar)))
    return written
