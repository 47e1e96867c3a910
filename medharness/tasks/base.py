"""The task plugin interface: how to read one data format and turn samples into requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal, Optional

from medharness.cards import CardOptions, parse_options
from medharness.errors import UserError
from medharness.schema import GenerationSettings, Request, Sample, TaskCard, template_fields
from medharness.tasks.hub import hf_snapshot


LOCAL_FOLDER, LOCAL_NOTE = "local folder ", " (no hub revision: the files as found there)"


def local_data_folder(data_source: str) -> Optional[str]:
    """The folder a run's `data_source` names, or None for hub data (older runs recorded the
    bare folder)."""
    if data_source.startswith(LOCAL_FOLDER) and data_source.endswith(LOCAL_NOTE):
        return data_source[len(LOCAL_FOLDER):-len(LOCAL_NOTE)]
    return None if data_source.startswith("hf:") else data_source


def check_split(card: TaskCard, split: str) -> None:
    """The one split check: `run` makes it before loading, and every loader again (tests and
    `score` call loaders directly)."""
    if split not in card.splits:
        raise UserError(f"task {card.name!r} has no split {split!r}; choose one of {', '.join(card.splits)}")


def existing_folder(folder: Path, holding: str) -> Path:
    """`folder` if it is a folder, else the one-line error that says what it should hold."""
    if not folder.is_dir():
        raise UserError(f"data folder {str(folder)!r} does not exist; pass the folder holding {holding}")
    return folder


class TaskOptions(CardOptions):
    """Options every task card may set, whatever its format."""

    judge: Optional[str] = None  # model card of the judge, read by judged metrics (MM-Vet)


class ModalityOptions(TaskOptions):
    """A dataset's modality as its card states it: `modality`, one label for every sample, or
    `modality_map` {raw value: modality} over the metadata key `modality_key`, per sample.
    `modality_source` is recorded with it: by default "card" for a constant (ours, not the
    data's) and "derived" for a mapping; "dataset" where the data itself says it (Path-VQA is
    pathology by definition; SLAKE's map only respells its own modality column)."""

    modality: Optional[str] = None
    modality_key: Optional[str] = None
    modality_map: Optional[dict[str, str]] = None
    modality_source: Optional[Literal["card", "derived", "dataset"]] = None


def card_modality(options: ModalityOptions, values: dict[str, Any]) -> dict[str, str]:
    """`modality` and `modality_source` of one sample whose metadata (or raw record) is
    `values`. A list value maps each entry: mixed or unmapped kinds are "unknown", never a guess."""
    if not options.modality_map:
        return {"modality": options.modality or "unknown", "modality_source": options.modality_source or "card"}
    raw = values.get(options.modality_key or "image_type")
    labels = {options.modality_map.get(str(v)) for v in (raw if isinstance(raw, list) else [raw])} - {None}
    return {"modality": labels.pop() if len(labels) == 1 else "unknown",
            "modality_source": options.modality_source or "derived"}


class TaskPlugin:
    """A data format. Subclasses implement `load`; most keep the default `request`.

    A plugin is constructed with its card; `load(data_dir, split)` yields samples in the
    dataset's order. `data_dir` is the folder given by --data-dir or the card's `data_env`
    variable; None means "use the Hugging Face copy" (offline with no local copy: a UserError
    that says where to put the data).
    """

    Options: ClassVar[type[TaskOptions]] = TaskOptions  # the card options this format reads
    prompt_fields: ClassVar[tuple[str, ...]] = ("question", "choices")  # what `request` fills in

    def __init__(self, card: TaskCard) -> None:
        self.card = card
        self.hub_commit: Optional[str] = None  # the hub commit actually read, once a snapshot is taken
        self.options = self.check_card(card)

    @classmethod
    def check_card(cls, card: TaskCard) -> TaskOptions:
        """The card's options as this format declares them, and a prompt that uses only the
        fields it fills in; checked by `validate` and again when a run loads the card."""
        unknown = [f for f in template_fields(card.prompt) if f not in cls.prompt_fields]
        if unknown:
            raise UserError(f"task card {card.name!r}: prompt field {{{unknown[0]}}} is not one format "
                            f"{card.format!r} fills in (it has: {', '.join('{' + f + '}' for f in cls.prompt_fields)})")
        return parse_options(f"task card {card.name!r} (format {card.format})", card.options, cls.Options)

    def option(self, key: str, default: Any = None) -> Any:
        """A declared option, or `default` where the card leaves it unset."""
        value = getattr(self.options, key)
        return default if value is None else value

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
            return f"{LOCAL_FOLDER}{data_dir}{LOCAL_NOTE}"
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
