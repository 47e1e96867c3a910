"""The records that flow through a run: samples in, requests to models, predictions out,
scored results and the run record written to results/."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

MODALITIES = (
    "ct", "mri", "xray", "ultrasound", "pathology", "gross", "fundus", "dermoscopy",
    "endoscopy", "natural", "chart", "diagram", "document", "unknown",
)
AnswerType = Literal["closed", "open"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRef(Strict):
    """A lazy reference to one image; `medharness.images` opens and hashes it.

    `root` is the data folder the image must stay inside; `path` is the path as the data file
    gives it (relative to root). `data` holds encoded image bytes already in memory (the
    Hugging Face parquet layout embeds them); `path` then only names the image.
    """

    root: str = ""
    path: str = ""
    data: Optional[bytes] = None
    # Set by the runner from GenerationSettings.image_max_side: `open_image` downscales the image
    # so that its long side is at most this many pixels.
    max_side: Optional[int] = None

    def describe(self) -> str:
        if self.data is not None:
            return self.path or f"<{len(self.data)} bytes in memory>"
        return self.path


class GenerationSettings(Strict):
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = Field(default_factory=list)
    # Input resolution for any model: images are downscaled so that their long side is at most
    # this many pixels before the adapter sees them (medharness.images); None = as stored.
    image_max_side: Optional[int] = Field(None, ge=1, strict=True)
    # Dragonfly zoom-in selection ratio; None = the model generation's default.
    selection_ratio: Optional[float] = None


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
    # recorded as an error with this reason instead of being sent to the model.
    error: Optional[str] = None

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
    scores: dict[str, Optional[float]] = Field(default_factory=dict)
    error: Optional[str] = None
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
    n_samples: int = 0
    n_errors: int = 0
    n_cached: int = 0
    seconds: Optional[float] = None
    metrics: Metrics = Field(default_factory=Metrics)
    warnings: list[str] = Field(default_factory=list)


class TaskCard(Strict):
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
    min_group_size: int = 30
    answer_type_definition: Optional[str] = None
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    options: dict[str, Any] = Field(default_factory=dict)


class ModelCard(Strict):
    """models/<name>.yaml: which adapter, which weights, which settings."""

    name: str
    adapter: str
    description: str = ""
    weights: Optional[str] = None
    revision: Optional[str] = None
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int = 8
    random_weights: bool = False
    generation: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
