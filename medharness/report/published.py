"""Numbers from papers (reports/published.yaml), shown as reference rows.

Each entry names the harness metric whose definition matches the source's (`metric`); an entry
appears only under a leaderboard column of that task, split and metric, never elsewhere, and is
always marked as published. `value` is as the source prints it (percentage points).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml
from pydantic import Field, ValidationError

from medharness.cards import cards_root
from medharness.errors import UserError
from medharness.schema import Strict

FILE_NAME = "published.yaml"


class PublishedNumber(Strict):
    model: str
    task: str
    split: str = "test"
    metric: str
    value: float = Field(description="as printed by the source, in percentage points")
    definition: str = ""
    source: str
    note: str = ""

    @property
    def fraction(self) -> float:
        """In the units of run.json (accuracy 77.4 -> 0.774)."""
        return self.value / 100.0


def published_path(out_dir: Path) -> Optional[Path]:
    """The out folder's published.yaml, else the one in the source checkout's reports/."""
    for candidate in (Path(out_dir) / FILE_NAME, cards_root() / "reports" / FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_published(path: Optional[Path]) -> list[PublishedNumber]:
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read published numbers ({type(exc).__name__}); fix the YAML or remove the file") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a YAML list of entries (model, task, metric, value, source)")
    entries = []
    for index, item in enumerate(data, 1):
        try:
            entries.append(PublishedNumber.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise UserError(f"{path}: entry {index}: {where}: {first['msg']}") from None
    return entries
