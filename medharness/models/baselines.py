"""Honest baselines from the VQA literature: what a benchmark gives away without looking.

`majority`: the most frequent train answer for the question's form (closed/open, `question_form`).
`question-only`: a text classifier (TF-IDF + logistic regression) from train questions to train
answers; it never sees the image, so its score is what the questions alone reveal.
Both learn from the task's train split (the runner loads it: `needs_train`), so they refuse
tasks without one. Of the evaluated samples they see only the questions, never the gold.
`constant`: the same answer to every question, learning nothing: the first option ("A") for
multiple choice and "yes" otherwise (POPE's all-yes reference); it runs on every task.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from pydantic import Field

from medharness.cards import CardOptions
from medharness.models.base import ModelAdapter
from medharness.provenance import data_fingerprint
from medharness.registry import ADAPTERS
from medharness.schema import ModelCard, Prediction, Question, Request, Sample

# A question that opens with an auxiliary verb asks for yes or no ("Is there a mass?", "Does
# the lesion enhance?"), unless it offers alternatives ("Is it benign or malignant?").
AUXILIARIES = frozenset(
    "is are was were am do does did has have had can could will would should shall may might must".split()
)


def question_form(question: str) -> str:
    """closed (a yes/no question) or open, from the wording alone, never from the answer."""
    words = re.findall(r"[a-z']+", question.lower())
    if words and words[0] in AUXILIARIES and "or" not in words:
        return "closed"
    return "open"


def most_common(answers: list[str]) -> str:
    """The most frequent answer; ties go to the alphabetically first, so the choice is stable."""
    counts = Counter(answers)
    return min(counts, key=lambda a: (-counts[a], a))


class Baseline(ModelAdapter):
    use_cache = False  # cheap to recompute, and their outputs depend on the train split
    needs_train = True

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        self.train_fingerprint = ""

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "train": self.train_fingerprint}

    def prepare(self, train: Sequence[Sample], evaluated: Sequence[Question]) -> None:
        self.train_fingerprint = data_fingerprint(train)
        self.fit(list(train), {q.id: q for q in evaluated})

    def fit(self, train: list[Sample], evaluated: dict[str, Question]) -> None:
        raise NotImplementedError


class MajorityBaseline(Baseline):
    def fit(self, train: list[Sample], evaluated: dict[str, Question]) -> None:
        by_form: dict[str, list[str]] = {}
        for s in train:
            by_form.setdefault(question_form(s.question), []).append(s.references[0].strip().lower())
        self.answer = {form: most_common(a) for form, a in by_form.items()}
        self.fallback = most_common([s.references[0].strip().lower() for s in train])
        self.forms = {i: question_form(q.question) for i, q in evaluated.items()}

    def generate(self, requests: list[Request]) -> list[Prediction]:
        return [
            Prediction(sample_id=r.sample_id, text=self.answer.get(self.forms.get(r.sample_id, ""), self.fallback))
            for r in requests
        ]


class QuestionOnlyOptions(CardOptions):
    C: float = Field(10.0, gt=0)  # inverse regularisation strength of the logistic regression


class QuestionOnlyBaseline(Baseline):
    Options = QuestionOnlyOptions

    def fit(self, train: list[Sample], evaluated: dict[str, Question]) -> None:
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
