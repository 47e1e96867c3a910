"""`replay`: answers from another tool's predictions file, so its outputs are scored with our
definitions (`medharness score`). The file is JSONL: {"id": <sample id>, "prediction": <text>}."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.records import BadLine, json_kind, json_lines, sample_id, text_problem
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Question, Request, Sample

SHOW = 5  # ids listed in a message


class Answer(NamedTuple):
    """One line's prediction, or why it cannot be used (the sample is then a model error)."""

    text: str
    problem: Optional[str] = None


def read_predictions(path: Path) -> tuple[dict[str, Answer], list[str]]:
    """id -> answer, and the ids seen more than once (the first occurrence is kept). A line
    whose id can be read but whose prediction is not text (null, a number, a list) makes that
    sample a model error; a file or a line that cannot be read stops with one line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read predictions: {exc.strerror or exc}") from None
    found: dict[str, Answer] = {}
    duplicates: list[str] = []
    for number, row in json_lines(path, raw, "predictions"):
        if isinstance(row, BadLine):
            raise UserError(f"{path}:{number}: {row.reason}")
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise UserError(f'{path}:{number}: each line must be an object {{"id": ..., "prediction": ...}}')
        key = sample_id(row["id"])
        if key is None:
            raise UserError(f'{path}:{number}: "id" must be a string or a whole number, got {json_kind(row["id"])}')
        if key in found:
            duplicates.append(key)
            continue
        problem = text_problem(row["prediction"])
        found[key] = Answer("", f'{path.name}:{number}: "prediction" {problem}') if problem else Answer(row["prediction"])
    return found, duplicates


def id_list(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOW])
    return shown + (f", ... ({len(ids) - SHOW} more)" if len(ids) > SHOW else "")


class ReplayOptions(CardOptions):
    path: Optional[str] = None  # the JSONL predictions file


class ReplayAdapter(ModelAdapter):
    """Missing ids become errors, scored as wrong."""

    Options = ReplayOptions
    needs_images = False
    use_cache = False

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        if self.options.path is None:
            raise UserError(f"model card {card.name!r}: the replay adapter needs options.path (a JSONL predictions file)")
        self.path = Path(self.options.path)
        self.predictions, self.duplicates = read_predictions(self.path)
        self.problems: list[str] = []
        self.missing: list[str] = []

    def prepare(self, train: Sequence[Sample], evaluated: Sequence[Question]) -> None:
        known = {s.id for s in evaluated}
        unknown = [i for i in self.predictions if i not in known]
        if self.duplicates:
            self.problems.append(f"{len(self.duplicates)} duplicate ids (first kept): {id_list(self.duplicates)}")
        if unknown:
            self.problems.append(f"{len(unknown)} ids not among the evaluated samples (ignored): {id_list(unknown)}")
        for problem in self.problems:
            warnings.warn(f"{self.path.name}: {problem}", stacklevel=2)

    def close(self) -> None:
        # Counted over the samples the model was asked for: data errors are skipped before that.
        if self.missing:
            warnings.warn(f"{self.path.name}: {len(self.missing)} samples without a prediction (scored as wrong): "
                          f"{id_list(self.missing)}", stacklevel=2)

    def fingerprint_parts(self) -> dict:
        return {"file": str(self.path), "predictions": {k: v.problem or v.text for k, v in self.predictions.items()}}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        out = []
        for r in requests:
            answer = self.predictions.get(r.sample_id)
            if answer is None:
                self.missing.append(r.sample_id)
                out.append(Prediction(sample_id=r.sample_id, error="no prediction for this id in the predictions file"))
            else:
                out.append(Prediction(sample_id=r.sample_id, text=answer.text, error=answer.problem))
        return out


ADAPTERS.register("replay", ReplayAdapter)
