"""Metrics graded by a judge model (`--judge <model card>`, or `judge:` in the task's options),
which the runner builds from its card and passes to the batch scorer.

`mmvet_judge` is MM-Vet's own grading: its few-shot prompt, its score parsing, its re-asks.
`open_judge_match` is an extra view on open medical answers, reported beside the rule-based
metrics and never instead of them. Each sample row stores the judge's card, fingerprint,
prompt and raw verdict under `extra[<metric name>]`; unreadable verdicts are counted in the
run's warnings and scored as MM-Vet scores them (0.0), never as a match.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Optional, Sequence

from medharness.metrics.base import Judge, Metric, Scored, register_metric

SHOW = 5  # sample ids listed in a warning
Row = tuple[Optional[float], dict[str, Any]]

# MM-Vet's grading prompt, word for word (Yu et al., MM-Vet, github.com/yuweihao/MM-Vet,
# mm-vet_evaluator.py): scores stay comparable with published MM-Vet numbers only if the judge
# reads exactly this text.
MMVET_PROMPT = """Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0
"""
MMVET_RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
# MM-Vet asks at temperature 0, re-asks an unreadable verdict at 0 and then 0.5 hotter each
# time, five asks in all, and scores 0.0 if none parses. Its replies are capped at 3 tokens.
MMVET_TEMPERATURES = (0.0, 0.0, 0.5, 1.0, 1.5)
MMVET_MAX_TOKENS = 3

OPEN_MATCH_PROMPT = (
    "You grade answers to medical questions about images. Decide whether the model's answer "
    "means the same as the reference answer: synonyms, abbreviations, plural forms and different "
    "wording of the same finding count as the same; an answer that is vaguer, more general, "
    "partly wrong or names several alternatives does not. Reply with one word: yes or no.\n\n"
    "Question: {question}\nReference answer: {reference}\nModel answer: {prediction}\n"
    "Does the model answer mean the same as the reference answer?"
)
OPEN_MATCH_RETRY_SUFFIX = "\nReply with exactly one word, yes or no:"
OPEN_MATCH_TEMPERATURES = (0.0, 0.0, 0.5)
OPEN_MATCH_MAX_TOKENS = 3


def question_of(item: Scored) -> str:
    """The question as asked: a Sample's `question`, else the prompt a SampleResult stores
    (judged task cards use the bare "{question}" prompt)."""
    return getattr(item, "question", None) or item.metadata.get("question") or getattr(item, "prompt", "")


def mmvet_ground_truth(references: Sequence[str]) -> str:
    answer = " <OR> ".join(references)
    return answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")


def mmvet_prompts(item: Scored) -> tuple[str, str]:
    row = " | ".join([question_of(item), mmvet_ground_truth(item.references), item.prediction, ""])
    return MMVET_PROMPT + "\n" + row, MMVET_PROMPT + "\n" + row + MMVET_RETRY_SUFFIX


def parse_mmvet_score(verdict: str) -> Optional[float]:
    """MM-Vet's rule: the verdict's first word is a number in [0, 1]."""
    words = verdict.strip().split()
    try:
        score = float(words[0]) if words else None
    except ValueError:
        return None
    return score if score is not None and 0.0 <= score <= 1.0 else None


def open_match_prompts(item: Scored) -> tuple[str, str]:
    prompt = OPEN_MATCH_PROMPT.format(question=question_of(item), reference=" / ".join(item.references),
                                      prediction=item.prediction)
    return prompt, prompt + OPEN_MATCH_RETRY_SUFFIX


def parse_yes_no(verdict: str) -> Optional[float]:
    first = re.match(r"\W*([A-Za-z]+)", verdict)
    word = first.group(1).lower() if first else ""
    return {"yes": 1.0, "no": 0.0}.get(word)


def judged_scorer(
    metric: str,
    prompts: Callable[[Scored], tuple[str, str]],
    parse: Callable[[str], Optional[float]],
    temperatures: Sequence[float],
    max_tokens: int,
    applies: Callable[[Scored], bool] = lambda item: True,
) -> Callable[[Sequence[Scored], dict[str, Any], Judge], list[Row]]:
    """A batch scorer that sends the applicable, answered items of a batch to the judge."""

    def score(items: Sequence[Scored], options: dict[str, Any], judge: Judge) -> list[Row]:
        rows: list[Row] = [(None, {}) for _ in items]
        ask = []
        for i, item in enumerate(items):
            if not applies(item):
                continue
            if getattr(item, "error", None):
                # The model gave no answer: wrong, as the rule-based metrics score it.
                rows[i] = (0.0, {"skipped": "the model's answer is an error; scored 0.0"})
            else:
                ask.append(i)
        if not ask:
            return rows
        first, retry = zip(*(prompts(items[i]) for i in ask))
        verdicts = judge.grade(first, parse, max_tokens, retry, temperatures)
        unreadable, failed = [], []
        for i, verdict in zip(ask, verdicts):
            item_id = str(getattr(items[i], "id", i))
            if verdict.record.get("error"):
                failed.append(item_id)
                rows[i] = (None, verdict.record)
            elif verdict.score is None:
                unreadable.append(item_id)
                rows[i] = (0.0, verdict.record)
            else:
                rows[i] = (verdict.score, verdict.record)
        warn_about(metric, unreadable, f"judge verdict unreadable after {len(temperatures)} asks; scored 0.0")
        warn_about(metric, failed, "judge request failed; not scored")
        return rows

    return score


def warn_about(metric: str, ids: list[str], what: str) -> None:
    """The runner stores warnings in run.json: unreadable and failed verdicts stay visible."""
    if ids:
        shown = ", ".join(ids[:SHOW]) + (f" and {len(ids) - SHOW} more" if len(ids) > SHOW else "")
        warnings.warn(f"{metric}: {what}: {len(ids)} sample(s): {shown}", stacklevel=2)


register_metric(Metric(
    name="mmvet_judge",
    definition=(
        "MM-Vet's GPT-graded correctness in [0, 1]: the judge model gets MM-Vet's few-shot grading "
        "prompt with the question, the ground truth (<AND>/<OR> alternatives) and the answer, and "
        "replies with a score; the first word must be a number in [0, 1], else it is re-asked (five "
        "asks, temperatures 0, 0, 0.5, 1.0, 1.5) and scored 0.0 if none parses. Group value: mean."
    ),
    batch=judged_scorer("mmvet_judge", mmvet_prompts, parse_mmvet_score, MMVET_TEMPERATURES, MMVET_MAX_TOKENS),
))

register_metric(Metric(
    name="open_judge_match",
    definition=(
        "Open questions only: 1 if the judge model answers 'yes' to whether the answer means the "
        "same as the reference answer, 0 if 'no'; an unreadable verdict is re-asked (three asks) and "
        "scored 0. An extra view beside the rule-based metrics, which it never replaces."
    ),
    batch=judged_scorer("open_judge_match", open_match_prompts, parse_yes_no, OPEN_MATCH_TEMPERATURES,
                        OPEN_MATCH_MAX_TOKENS, applies=lambda item: item.answer_type == "open"),
))
