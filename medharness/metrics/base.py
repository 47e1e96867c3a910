"""What a metric is: a named, documented function, per sample or over a corpus.

Metric functions read scored items through the `Scorable` shape, which both `Sample` (with the
prediction passed separately) and `SampleResult` have: references, answer_type, choices,
metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

from medharness.errors import UserError
from medharness.registry import METRICS


class Scorable(Protocol):
    references: list[str]
    answer_type: Optional[str]
    choices: Optional[list[str]]
    metadata: dict[str, Any]


class Scored(Scorable, Protocol):
    prediction: str


PerSample = Callable[[str, Scorable], Optional[float]]
# A corpus function gets the scored items of one group and returns {metric name: value}; one
# call may produce a family of values (BLEU-1..4, METEOR, ...).
Corpus = Callable[[Sequence[Scored]], dict[str, Optional[float]]]


class Verdict(Protocol):
    score: Optional[float]  # None: unreadable, or the request failed (`record["error"]`)
    record: dict[str, Any]  # stored in the sample's `extra`


class Judge(Protocol):
    """A model that grades answers (models/judge.py), built by the runner from the judge's card."""

    def grade(self, prompts: Sequence[str], parse: Callable[[str], Optional[float]], max_new_tokens: int,
              retry_prompts: Optional[Sequence[str]], temperatures: Sequence[float]) -> Sequence[Verdict]: ...


# A batch scorer asks the judge: it gets a batch of scored items, the task card's options and the
# judge, and returns per item (score or None, a record stored in the sample's `extra`).
BatchScorer = Callable[[Sequence[Scored], dict[str, Any], Judge], list[tuple[Optional[float], dict[str, Any]]]]


@dataclass(frozen=True)
class Metric:
    """One named definition.

    `per_sample` returns a score in [0, 1] or None when the metric does not apply to the item
    (closed accuracy on an open question); a group's value is the mean over applicable items.
    `corpus` metrics are computed on the whole group at once (caption metrics, POPE F1); they
    may also have a per_sample value for the per-sample rows.
    """

    name: str
    definition: str
    per_sample: Optional[PerSample] = None
    corpus: Optional[Corpus] = None
    batch: Optional[BatchScorer] = None
    outputs: tuple[str, ...] = ()  # names a corpus function returns; default (name,)
    higher_is_better: bool = True
    bootstrap: bool = True  # corpus metrics that are slow (Java) set False: no CI
    # A metadata key whose items form one unit (MMBench's rotated copies of a question): the
    # bootstrap resamples whole units and n counts units, not rows.
    cluster: Optional[str] = None

    def output_names(self) -> tuple[str, ...]:
        return self.outputs or (self.name,)

    def check(self, options: dict[str, Any]) -> None:
        """Fails in one line, before any model call, when the task's options cannot work: a
        batch scorer without a judge named."""
        if self.batch is not None and not options.get("judge"):
            raise UserError(f"{self.name} needs a judge model: pass --judge <model card> (e.g. an `openai` "
                            "card for a served LLM) or set `judge:` in the task card's options")


def register_metric(metric: Metric) -> Metric:
    return METRICS.register(metric.name, metric)
