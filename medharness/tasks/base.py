"""The task plugin interface: how to read one data format and turn samples into requests."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from medharness.schema import GenerationSettings, Request, Sample, TaskCard
from medharness.tasks.hub import hf_snapshot


class TaskPlugin:
    """A data format. Subclasses implement `load`; most keep the default `request`.

    A plugin is constructed with its card; `load(data_dir, split)` yields samples in the
    dataset's order. `data_dir` is the folder given by --data-dir or the card's `data_env`
    variable; None means "use the Hugging Face copy" (offline with no local copy: a UserError
    that says where to put the data).
    """

    def __init__(self, card: TaskCard) -> None:
        self.card = card
        self.hub_commit: Optional[str] = None  # the hub commit actually read, once a snapshot is taken

    def snapshot(self, patterns: list[str], docs: str) -> Path:
        """The card's Hugging Face copy (see hf_snapshot), remembering the commit it was read at."""
        root = hf_snapshot(self.card, patterns, docs)
        self.hub_commit = root.name  # huggingface_hub names each snapshot folder by its commit
        return root

    def load(self, data_dir: Optional[Path], split: str) -> Iterator[Sample]:
        raise NotImplementedError

    def data_source(self, data_dir: Optional[Path]) -> str:
        """Where the data came from, recorded in run.json: the hub commit actually read (a card's
        `main` resolves to a different commit as the dataset changes), or the local folder."""
        if data_dir is not None:
            return f"local folder {data_dir} (no hub revision: the files as found there)"
        return f"hf:{self.card.hf_dataset}@{self.hub_commit or 'unknown commit'} (card revision {self.card.hf_revision})"

    def request(self, sample: Sample, generation: GenerationSettings) -> Request:
        """The default prompt: the card's template over the sample's fields. It never sees the
        references, so it cannot reveal the answer type."""
        prompt = self.card.prompt.format(
            question=sample.question,
            choices=format_choices(sample.choices or []),
        )
        return Request(
            sample_id=sample.id,
            prompt=prompt,
            images=sample.images,
            choices=sample.choices,
            generation=generation,
        )


def format_choices(choices: list[str]) -> str:
    return "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices))
