"""Multiple-choice scoring: which option a free-text answer picks, and accuracy over that.

`extract_choice(text, choices)` returns the 0-based option index or None. Rules, first that
applies wins (letters are A.. up to the number of options, uppercase only, so that the article
"a" is never read as option A):

1. The whole answer is one letter, optionally wrapped: "B", "(B)", "B.", "B)", "[B]", "**B**".
2. The answer opens with a letter and a delimiter: "B. cat", "(B) cat", "B: cat", "B) cat",
   unless other parenthesised letters follow ("(A) cat (B) dog" echoes the option list).
3. An explicit statement: "the answer is B", "Answer: (B)", else "the correct option is B";
   statements with "answer" outrank those with "option"/"choice"; when several of the same
   rank appear, the LAST one counts (reasoning before a final answer).
4. Exactly one distinct parenthesised letter anywhere: "I pick (C) because ...".
5. The option text itself: the normalised answer equals one option's text, or exactly one
   option's text occurs in it as whole words (an option contained in a longer matched option
   does not count separately).
Otherwise the answer is unparseable: counted by `choice_unparseable` and scored wrong. Never a
random guess (lmms-eval's MMMU parser guesses, so its scores change run to run), and never the
first character alone (lmms-eval's SEED-Bench reads "Cat" as option C).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Optional, Sequence

from medharness.metrics.base import Metric, Scorable, Scored, register_metric

_WRAPPED = re.compile(r"^[\s*_`\[\(\"']*([A-Z])[\s*_`\]\)\"'.:,]*$")
_LEADING = re.compile(r"^[\s*_`]*\(?([A-Z])(?:\)|\.|:|\)\.|\]|,)(?:\s|$)")
_STATEMENT = (
    r"(?:\s+(?:is|would\s+be|should\s+be|=))?\s*[:\-]?\s*"
    r"(?:option\s+|choice\s+)?[*_`]*\(?([A-Z])(?![A-Za-z0-9])"
)
# "answer ... B" outranks "option/choice ... B": in "the answer is B, not option A" the option
# mention is a rejection, not a pick.
_STATED = (
    re.compile(r"answer" + _STATEMENT, re.IGNORECASE),
    re.compile(r"(?:option|choice)" + _STATEMENT, re.IGNORECASE),
)
_PAREN = re.compile(r"\(([A-Z])\)")


def normalise_text(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _valid(found: Optional[str], n: int) -> Optional[int]:
    if found is None:
        return None
    index = ord(found) - ord("A")
    return index if 0 <= index < n else None


def extract_choice(text: str, choices: Sequence[str]) -> Optional[int]:
    n = len(choices)
    text = text.strip()
    if not text or n == 0:
        return None
    found = _WRAPPED.match(text)
    if found:
        return _valid(found.group(1), n)
    parens = {m.group(1) for m in _PAREN.finditer(text)}
    found = _LEADING.match(text)
    # "(A) cat (B) dog" echoes the option list: a leading label decides only when alone.
    if found and parens <= {found.group(1)}:
        return _valid(found.group(1), n)
    # Rule 3 needs the letter itself uppercase: "the answer is a dog" is not option A.
    for pattern in _STATED:
        stated = [m.group(1) for m in pattern.finditer(text) if m.group(1).isupper()]
        if stated:
            return _valid(stated[-1], n)
    if len(parens) == 1:
        picked = _valid(parens.pop(), n)
        if picked is not None:
            return picked
    return _match_option_text(text, choices)


def _match_option_text(text: str, choices: Sequence[str]) -> Optional[int]:
    answer = normalise_text(text)
    options = [normalise_text(c) for c in choices]
    if not answer:
        return None
    exact = [i for i, o in enumerate(options) if o and o == answer]
    if len(exact) == 1:
        return exact[0]
    padded = f" {answer} "
    found = [i for i, o in enumerate(options) if o and f" {o} " in padded]
    found = [i for i in found if not any(j != i and options[i] in options[j] for j in found)]
    return found[0] if len(found) == 1 else None


def gold_index(item: Scorable) -> Optional[int]:
    if not item.choices or not item.references:
        return None
    return _valid(item.references[0].strip().upper()[:1], len(item.choices))


def choice_correct(prediction: str, item: Scorable) -> Optional[float]:
    gold = gold_index(item)
    if gold is None:
        return None
    return 1.0 if extract_choice(prediction, item.choices or []) == gold else 0.0


def choice_unparseable(prediction: str, item: Scorable) -> Optional[float]:
    if gold_index(item) is None:
        return None
    return 1.0 if extract_choice(prediction, item.choices or []) is None else 0.0


def circular_accuracy(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    """MMBench CircularEval: a question counts as right only when the model picks the right
    option in every rotated copy (items sharing metadata `circular_index`)."""
    by_question: dict[str, list[float]] = defaultdict(list)
    for position, item in enumerate(items):
        score = choice_correct(item.prediction, item)
        if score is None:
            continue
        key = str(item.metadata.get("circular_index", f"item-{position}"))
        by_question[key].append(score)
    if not by_question:
        return {"choice_circular_accuracy": None}
    right = sum(1 for scores in by_question.values() if min(scores) == 1.0)
    return {"choice_circular_accuracy": right / len(by_question)}


CHOICE_RULES = (
    "option letter extracted by medharness.metrics.choice.extract_choice (letter alone or wrapped; "
    "leading 'B.'; last 'answer is B'; one '(B)'; else the option text); unparseable = wrong, never guessed"
)

register_metric(Metric(
    name="choice_accuracy",
    definition=f"1 if the extracted option equals the gold option, else 0; {CHOICE_RULES}; None for items without options",
    per_sample=choice_correct,
))
register_metric(Metric(
    name="choice_unparseable",
    definition="1 if no option could be extracted from the answer (see choice_accuracy), else 0; the share of unparseable answers",
    per_sample=choice_unparseable,
    higher_is_better=False,
))
register_metric(Metric(
    name="choice_circular_accuracy",
    definition=(
        "MMBench CircularEval: share of questions (metadata circular_index = index mod 1,000,000) whose every "
        f"rotated copy is answered correctly under choice_accuracy; {CHOICE_RULES}"
    ),
    corpus=circular_accuracy,
    cluster="circular_index",
))
