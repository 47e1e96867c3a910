"""The records that flow through a run: samples in, requests to models, predictions out,
scored results and the run record written to results/."""

from __future__ import annotations

import string
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MODALITIES = (
    "ct", "mri", "xray", "ultrasound", "pathology", "gross", "fundus", "dermoscopy",
    "endoscopy", "natural", "chart", "diagram", "document", "unknown",
)
AnswerType = Literal["closed", "open"]
# What happened to a sample: scored; the model failed on it (counted wrong, in n); or the record
# itself is unusable (left out of every metric and n, listed with its reason).
Outcome = Literal["scored", "model_error", "data_error"]
# Why a record is a data error: the categories counted in RunRecord.skipped.
SkipReason = Literal[
    "missing image", "unreadable image", "undecodable image", "oversized image",
    "path outside the data folder", "not a regular file", "malformed record",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClinicalView(Strict):
    """Which 2-D view of a DICOM or NIfTI file to show, and its window (medharness.clinical_images).
    Values of the wrong type are errors, never coerced; None = the file's own or the default."""

    model_config = ConfigDict(extra="forbid", strict=True)
    window_center: Optional[float] = None
    window_width: Optional[float] = Field(default=None, gt=0)
    frame: Optional[int] = Field(default=None, ge=0)  # DICOM multi-frame, or the volume of a 4-D NIfTI
    slice: Optional[int] = Field(default=None, ge=0)  # NIfTI only
    axis: Optional[Literal["axial", "coronal", "sagittal"]] = None  # NIfTI only

    @model_validator(mode="after")
    def _window_complete(self) -> "ClinicalView":
        if (self.window_width is None) != (self.window_center is None):
            raise ValueError("window_center and window_width go together: give both or neither")
        return self


class CardModel(BaseModel):
    """What a card (or its generation settings) holds: unknown keys rejected, and a value of
    the wrong type is an error, never coerced ("8" is not 8, 1 is not true)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def template_fields(template: str) -> list[str]:
    """The field names of a prompt template. Only plain `{name}` fields are allowed: no
    attribute or index access, conversion or format spec, so str.format can only insert text."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"prompt template: {exc} (write a literal brace as {{{{ or }}}})") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"prompt field {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                             "is not a plain {name} field (no attribute, index, conversion or format spec)")
        names.append(name)
    return names


class ParquetCell(Strict):
    """Where one image's encoded bytes sit in a parquet file: read when its batch is planned,
    so a loaded split holds references, not images."""

    file: str  # absolute path of the parquet file
    row_group: int
    row: int  # within the row group
    column: str  # the leaf column of the bytes, e.g. "image.bytes" or "images.list.element.bytes"
    item: Optional[int] = None  # the image's index in a list cell


class ImageRef(Strict):
    """A lazy reference to one image; `medharness.images` opens and hashes it.

    `root` is the data folder the image must stay inside; `path` is the path as the data file
    gives it (relative to root). `parquet` points at encoded bytes inside a parquet file (the
    Hugging Face layout embeds them); `data` holds encoded bytes already in memory (a zip
    member). With either, `path` only names the image.
    """

    root: str = ""
    path: str = ""
    data: Optional[bytes] = None
    parquet: Optional[ParquetCell] = None
    # DICOM / NIfTI only: the view pinned at load (frame or slice, window); part of the image's hash.
    view: Optional[ClinicalView] = None
    # Set by the runner from GenerationSettings.image_max_side: `open_image` downscales the image
    # so that its long side is at most this many pixels.
    max_side: Optional[int] = None

    def is_file(self) -> bool:
        return self.data is None and self.parquet is None

    def describe(self) -> str:
        if self.data is not None:
            return self.path or f"<{len(self.data)} bytes in memory>"
        if self.parquet is not None:
            cell = self.parquet
            return self.path or f"{cell.file} row group {cell.row_group} row {cell.row}"
        return self.path


class GenerationSettings(CardModel):
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)
    # Input resolution for any model: images are downscaled so that their long side is at most
    # this many pixels before the adapter sees them (medharness.images); None = as stored.
    image_max_side: Optional[int] = Field(None, ge=1)
    # Dragonfly zoom-in selection ratio; None = the model generation's default.
    selection_ratio: Optional[float] = Field(None, gt=0, le=1)
    # Dragonfly ablations (docs/dragonfly.md): how high crops are chosen and which crop levels
    # reach the LLM; None = the model generation's default.
    selection: Optional[Literal["similarity", "random", "first", "none"]] = None
    levels: Optional[Literal["low", "low+medium", "low+medium+high"]] = None
    # Seed of a setting that draws at random (selection: random); the runner sets it from --seed
    # only then, so deterministic runs keep their cache keys.
    seed: Optional[int] = None


def skip_text(skipped: dict[str, int]) -> str:
    """"1 missing image, 1 path outside the data folder": data-error counts for people."""
    return ", ".join(f"{n} {reason}" for reason, n in skipped.items())


class Sample(Strict):
    """One evaluation item as a task plugin yields it."""

    id: str
    images: list[ImageRef] = Field(default_factory=list)
    question: str = ""
    references: list[str] = Field(default_factory=list)
    answer_type: Optional[AnswerType] = None
    choices: Optional[list[str]] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # A problem found while loading (say, an image path escaping the data folder): the sample is
    # a data error with this reason and category, and is never sent to the model.
    error: Optional[str] = None
    skip_reason: Optional[SkipReason] = None

    @field_validator("metadata")
    @classmethod
    def modality_in_vocabulary(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        # One vocabulary across datasets, so "CT" from one loader and "ct" from another are one
        # group in breakdowns and reports.
        modality = metadata.get("modality")
        if modality is not None and modality not in MODALITIES:
            raise ValueError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
        return metadata


class Question(Strict):
    """What an adapter may know of an evaluated sample before answering it: no references and
    nothing derived from them (answer_type and the metadata can be, so neither is here)."""

    id: str
    question: str = ""
    images: list[ImageRef] = Field(default_factory=list)
    choices: Optional[list[str]] = None

    @classmethod
    def of(cls, sample: Sample) -> "Question":
        return cls(id=sample.id, question=sample.question, images=sample.images, choices=sample.choices)


class Request(Strict):
    sample_id: str
    prompt: str
    images: list[ImageRef] = Field(default_factory=list)
    choices: Optional[list[str]] = None
    generation: GenerationSettings = Field(default_factory=GenerationSettings)


class Prediction(Strict):
    sample_id: str
    text: str = ""
    input_tokens: Optional[int] = None
    visual_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    seconds: Optional[float] = None
    error: Optional[str] = None
    extra: dict[str, Any] = Field(default_factory=dict)


class SampleResult(Strict):
    """One line of samples.jsonl: everything needed to rescore or report a sample."""

    id: str
    prompt: str = ""
    prediction: str = ""
    references: list[str] = Field(default_factory=list)
    answer_type: Optional[AnswerType] = None
    choices: Optional[list[str]] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The sample's image files, relative to the run's data folder (spec.data_source), so the
    # explorer can show them; an image held in memory (a parquet or zip copy) is recorded by its
    # name. Rows written before this field existed read as [].
    images: list[str] = Field(default_factory=list)
    scores: dict[str, Optional[float]] = Field(default_factory=dict)
    outcome: Outcome = "scored"
    error: Optional[str] = None  # the model's failure, or why the record is unusable
    skip_reason: Optional[SkipReason] = None  # a data error's category
    cached: bool = False
    input_tokens: Optional[int] = None
    visual_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    seconds: Optional[float] = None
    extra: dict[str, Any] = Field(default_factory=dict)
    prompt_hash: str = ""
    target_hash: str = ""


class MetricValue(Strict):
    value: Optional[float]
    n: int
    ci: Optional[tuple[float, float]] = None
    small: bool = False  # fewer items than the card's min_group_size
    note: Optional[str] = None


# metric name -> value; groups: key -> group value -> metric name -> value
MetricTable = dict[str, MetricValue]


class Metrics(Strict):
    overall: MetricTable = Field(default_factory=dict)
    groups: dict[str, dict[str, MetricTable]] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)


class RunSpec(Strict):
    task: str
    task_version: str
    task_format: str
    split: str
    data_source: str
    data_fingerprint: str
    model: str
    model_card: dict[str, Any]
    model_fingerprint: str
    generation: GenerationSettings
    limit: Optional[int] = None
    seed: int = 0
    metric_definitions: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class RunRecord(Strict):
    run_id: str
    spec_hash: str
    spec: RunSpec
    status: Literal["running", "complete"] = "running"
    started: str
    finished: Optional[str] = None
    git_commit: Optional[str] = None
    packages: dict[str, str] = Field(default_factory=dict)
    n_samples: int = 0  # samples in the evaluation (scored and model errors): the n
    n_errors: int = 0  # model errors, counted wrong
    n_cached: int = 0
    n_skipped: int = 0  # data errors, in no metric and no n
    skipped: dict[str, int] = Field(default_factory=dict)  # data-error category -> count
    seconds: Optional[float] = None
    metrics: Metrics = Field(default_factory=Metrics)
    warnings: list[str] = Field(default_factory=list)


class TaskCard(CardModel):
    """tasks/<name>.yaml: which data and settings; the plugin (`format`) says how to read it."""

    name: str
    format: str
    version: str = "1"
    description: str = ""
    split: str = "test"
    splits: list[str] = Field(default_factory=lambda: ["test"])
    hf_dataset: Optional[str] = None
    hf_revision: Optional[str] = None
    data_env: Optional[str] = None
    source: str = ""
    license: str = ""
    prompt: str = "{question}"
    metrics: list[str] = Field(default_factory=list)
    headline: Optional[str] = None
    group_by: list[str] = Field(default_factory=list)
    min_group_size: int = Field(30, ge=1)
    answer_type_definition: Optional[str] = None
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    options: dict[str, Any] = Field(default_factory=dict)  # checked against the plugin's Options

    @field_validator("prompt")
    @classmethod
    def plain_fields_only(cls, prompt: str) -> str:
        template_fields(prompt)  # which names exist is the plugin's to say (TaskPlugin.prompt_fields)
        return prompt


class ModelCard(CardModel):
    """models/<name>.yaml: which adapter, which weights, which settings."""

    name: str
    adapter: str
    description: str = ""
    weights: Optional[str] = None
    revision: Optional[str] = None
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int = Field(8, ge=1)
    random_weights: bool = False
    generation: dict[str, Any] = Field(default_factory=dict)  # overrides; keys of GenerationSettings
    options: dict[str, Any] = Field(default_factory=dict)  # checked against the adapter's Options

    @field_validator("generation")
    @classmethod
    def known_generation_settings(cls, generation: dict[str, Any]) -> dict[str, Any]:
        try:
            GenerationSettings.model_validate(generation)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return generation
