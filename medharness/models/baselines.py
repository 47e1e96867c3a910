"""Honest baselines from the VQA literature: what a benchmark gives away without looking.

`majority`: the most frequent train answer for the question's answer type (closed/open).
`question-only`: a text classifier (TF-IDF + logistic regression) from train questions to train
answers; it never sees the image, so its score is what the questions alone reveal.
Both train on the task's train split (`prepare`), so they refuse tasks without one.
`constant`: the same answer to every question, learning nothing: the first option ("A") for
multiple choice and "yes" otherwise (POPE's all-yes reference); it runs on every task.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from pydantic import Field

from medharness.cards import CardOptions
from medharness.errors import UserError
from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Request, Sample

if TYPE_CHECKING:
    from medharness.tasks.base import TaskPlugin

TRAIN_SPLIT = "train"


def train_samples(task: "TaskPlugin", data_dir: Optional[Path]) -> list[Sample]:
    if TRAIN_SPLIT not in task.card.splits:
        raise UserError(f"task {task.card.name!r} has no train split; the baselines need one to learn from")
    samples = [s for s in task.load(data_dir, TRAIN_SPLIT) if s.references]
    if not samples:
        raise UserError(f"task {task.card.name!r}: the train split has no answered questions to learn from")
    return samples


def most_common(answers: list[str]) -> str:
    """The most frequent answer; ties go to the alphabetically first, so the choice is stable."""
    counts = Counter(answers)
    return min(counts, key=lambda a: (-counts[a], a))


class Baseline(ModelAdapter):
    use_cache = False  # cheap to recompute, and their outputs depend on the train split

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        self.train_fingerprint = ""

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "train": self.train_fingerprint}

    def prepare(self, task: "TaskPlugin", data_dir: Optional[Path], samples: Sequence[Sample]) -> None:
        from medharness.runner import data_fingerprint

        train = train_samples(task, data_dir)
        self.train_fingerprint = data_fingerprint(train)
        self.fit(train, {s.id: s for s in samples})

    def fit(self, train: list[Sample], evaluated: dict[str, Sample]) -> None:
        raise NotImplementedError


class MajorityBaseline(Baseline):
    def fit(self, train: list[Sample], evaluated: dict[str, Sample]) -> None:
        by_type: dict[Optional[str], list[str]] = {}
        for s in train:
            by_type.setdefault(s.answer_type, []).append(s.references[0].strip().lower())
        self.answer = {t: most_common(a) for t, a in by_type.items()}
        self.fallback = most_common([s.references[0].strip().lower() for s in train])
        self.types = {i: s.answer_type for i, s in evaluated.items()}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        return [
            Prediction(sample_id=r.sample_id, text=self.answer.get(self.types.get(r.sample_id), self.fallback))
            for r in requests
        ]


class QuestionOnlyOptions(CardOptions):
    C: float = Field(10.0, gt=0)  # inverse regularisation strength of the logistic regression


class QuestionOnlyBaseline(Baseline):
    Options = QuestionOnlyOptions

    def fit(self, train: list[Sample], evaluated: dict[str, Sample]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        answers = [s.references[0].strip().lower() for s in train]
        self.constant = most_common(answers) if len(set(answers)) == 1 else None
        if self.constant is None:
            self.model = make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                LogisticRegression(max_iter=1000, C=self.options.C),
            )
            self.model.fit([s.question for s in train], answers)
        self.questions = {i: s.question for i, s in evaluated.items()}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        if not requests:
            return []
        if self.constant is not None:
            texts = [self.constant] * len(requests)
        else:
            # Each question is classified on its own row: batch composition cannot change it.
            texts = list(self.model.predict([self.questions.get(r.sample_id, r.prompt) for r in requests]))
        return [Prediction(sample_id=r.sample_id, text=t) for r, t in zip(requests, texts)]


class ConstantOptions(CardOptions):
    choice: int = Field(0, ge=0)  # index of the option to pick in multiple choice
    text: str = "yes"  # the answer to every other question


class ConstantBaseline(ModelAdapter):
    use_cache = False
    Options = ConstantOptions

    def generate(self, requests: list[Request]) -> list[Prediction]:
        index, text = self.options.choice, self.options.text
        return [
            Prediction(sample_id=r.sample_id, text=chr(ord("A") + index) if r.choices and index < len(r.choices) else text)
            for r in requests
        ]


ADAPTERS.register("majority", MajorityBaseline)
ADAPTERS.register("constant", ConstantBaseline)
ADAPTERS.register("question-only", QuestionOnlyBaseline)
