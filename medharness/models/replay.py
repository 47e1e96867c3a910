"""`replay`: answers from another tool's predictions file, so its outputs are scored with our
definitions (`medharness score`). The file is JSONL: {"id": <sample id>, "prediction": <text>}."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Question, Request, Sample

SHOW = 5  # ids listed in a message


def read_predictions(path: Path) -> tuple[dict[str, str], list[str]]:
    """id -> prediction, and the ids seen more than once (the first occurrence is kept)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot read predictions: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: predictions must be UTF-8 JSONL") from None
    found: dict[str, str] = {}
    duplicates: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise UserError(f'{path}:{number}: each line must be an object {{"id": ..., "prediction": ...}}')
        if not isinstance(row["prediction"], str):
            raise UserError(f"{path}:{number}: \"prediction\" must be a string")
        key = str(row["id"])
        if key in found:
            duplicates.append(key)
            continue
        found[key] = row["prediction"]
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

    def prepare(self, train: Sequence[Sample], evaluated: Sequence[Question]) -> None:
        expected = [s.id for s in evaluated]
        known = set(expected)
        unknown = [i for i in self.predictions if i not in known]
        missing = [i for i in expected if i not in self.predictions]
        if self.duplicates:
            self.problems.append(f"{len(self.duplicates)} duplicate ids (first kept): {id_list(self.duplicates)}")
        if unknown:
            self.problems.append(f"{len(unknown)} ids not among the evaluated samples (ignored): {id_list(unknown)}")
        if missing:
            self.problems.append(f"{len(missing)} samples without a prediction (scored as wrong): {id_list(missing)}")
        for problem in self.problems:
            warnings.warn(f"{self.path.name}: {problem}", stacklevel=2)

    def fingerprint_parts(self) -> dict:
        return {"file": str(self.path), "predictions": self.predictions}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        return [
            Prediction(sample_id=r.sample_id, text=self.predictions[r.sample_id])
            if r.sample_id in self.predictions
            else Prediction(sample_id=r.sample_id, error="no prediction for this id in the predictions file")
            for r in requests
        ]


ADAPTERS.register("replay", ReplayAdapter)
