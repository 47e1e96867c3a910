"""Metrics of the general-domain benchmarks: POPE, TextVQA, ChartQA, GQA and MMMU's open items.

Each definition is written out in its registered `definition` and in docs/general-benchmarks.md,
with where it departs from lmms-eval's code.
"""

from __future__ import annotations

import re
import string
from typing import Optional, Sequence

from medharness.metrics.base import Metric, Scorable, Scored, register_metric
from medharness.metrics.choice import choice_correct
from medharness.metrics.normalize import vqa_v2

# ---------------------------------------------------------------- POPE (yes/no)


def yes_no(text: str) -> Optional[str]:
    """'yes' or 'no' when the answer opens with that word, else when exactly one of the two
    words occurs; None (unparseable) otherwise. Case and punctuation do not matter: "Yes." is yes."""
    words = re.findall(r"[a-z]+", text.lower())
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0]
    present = {"yes", "no"}.intersection(words)
    return present.pop() if len(present) == 1 else None


def yes_no_gold(item: Scorable) -> Optional[str]:
    """The gold answer when it is "yes" or "no" (case and spaces ignored), else None."""
    gold = item.references[0].strip().lower() if item.references else ""
    return gold if gold in ("yes", "no") else None


def pope_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    gold = yes_no_gold(item)
    if gold is None:
        return None
    return 1.0 if yes_no(prediction) == gold else 0.0


def pope_unparseable(prediction: str, item: Scorable) -> Optional[float]:
    if yes_no_gold(item) is None:
        return None
    return 1.0 if yes_no(prediction) is None else 0.0


def pope_counts(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    """'yes' is the positive class. Unparseable answers are neither predicted yes nor no: a gold
    'yes' answered unparseably is a false negative, and every item stays in the denominators."""
    tp = fp = fn = predicted_yes = n = 0
    for item in items:
        gold = yes_no_gold(item)
        if gold is None:
            continue
        n += 1
        said = yes_no(item.prediction)
        predicted_yes += said == "yes"
        tp += said == "yes" and gold == "yes"
        fp += said == "yes" and gold == "no"
        fn += said != "yes" and gold == "yes"
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pope_precision": precision,
        "pope_recall": recall,
        "pope_f1": f1,
        "pope_yes_ratio": predicted_yes / n if n else None,
    }


# ---------------------------------------------------------------- TextVQA (VQA accuracy)

def vqa_normalise(text: str) -> str:
    """The EvalAI answer processor as lmms-eval's TextVQA applies it to answer and human answers:
    its word step (lowercase; drop commas and question marks; split off "'s"), then the VQA v2
    script's punctuation, number-word, article and contraction rules."""
    return vqa_v2(text.lower().replace(",", "").replace("?", "").replace("'s", " 's"))


def vqa_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    """Mean over the leave-one-out subsets of the human answers of min(1, matches / 3)."""
    if not item.references:
        return None
    answer = vqa_normalise(prediction)
    humans = [vqa_normalise(r) for r in item.references]
    if len(humans) == 1:
        return 1.0 if humans[0] == answer else 0.0
    scores = []
    for i in range(len(humans)):
        others = humans[:i] + humans[i + 1:]
        scores.append(min(1.0, sum(h == answer for h in others) / 3))
    return sum(scores) / len(scores)


# ---------------------------------------------------------------- ChartQA (relaxed accuracy)


def _number(text: str) -> Optional[float]:
    try:
        return float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_match(prediction: str, gold: str, tolerance: float = 0.05) -> bool:
    answer = prediction.strip().removesuffix(".").strip()
    gold = gold.strip()
    said, target = _number(answer), _number(gold)
    if said is not None and target is not None:
        if target == 0:
            return said == 0
        return abs(said - target) / abs(target) <= tolerance
    return answer.lower() == gold.lower()


def relaxed_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    return 1.0 if any(relaxed_match(prediction, g) for g in item.references) else 0.0


# ---------------------------------------------------------------- GQA (exact match)

_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def gqa_normalise(text: str) -> str:
    return " ".join(text.lower().translate(_STRIP_PUNCTUATION).split())


def gqa_exact_match(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    answer = gqa_normalise(prediction)
    return 1.0 if any(answer == gqa_normalise(g) for g in item.references) else 0.0


# ---------------------------------------------------------------- MMMU (choice + open items)

_NUMBER_IN_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


def _as_number(text: str) -> Optional[float]:
    cleaned = text.replace(",", "").strip().rstrip(".")
    return float(cleaned) if re.fullmatch(r"-?\d+(?:\.\d+)?", cleaned) else None


def mmmu_open_match(prediction: str, gold: str) -> bool:
    """A numeric gold is matched by any number in the answer equal to it at 2 decimals; a text
    gold by its lowercased text occurring in the lowercased answer (MMMU's eval_open, without
    its sentence-splitting heuristics)."""
    target = _as_number(gold)
    if target is not None:
        found = _NUMBER_IN_TEXT.findall(prediction.replace(",", ""))
        return any(round(float(x), 2) == round(target, 2) for x in found)
    gold = gold.strip().lower()
    return bool(gold) and gold in prediction.lower()


def mmmu_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    if item.choices:
        return choice_correct(prediction, item)
    if not item.references:
        return None
    return 1.0 if any(mmmu_open_match(prediction, g) for g in item.references) else 0.0


register_metric(Metric(
    name="pope_accuracy",
    definition=(
        "1 if the answer's yes/no (the first word if yes/no, else the only one of yes/no present; "
        "case and punctuation ignored) equals the gold, else 0; unparseable = wrong"
    ),
    per_sample=pope_accuracy,
))
register_metric(Metric(
    name="pope_unparseable",
    definition="1 if neither yes nor no could be read from the answer (see pope_accuracy), else 0",
    per_sample=pope_unparseable,
    higher_is_better=False,
))
register_metric(Metric(
    name="pope_prf",
    definition=(
        "over the group, 'yes' positive, answers read as in pope_accuracy: precision TP/(TP+FP), recall "
        "TP/(TP+FN) with unparseable gold-yes answers as FN, F1 = 2PR/(P+R); yes_ratio = share of ALL items "
        "whose answer is read as yes (lmms-eval's yes_ratio is the share of GOLD yes)"
    ),
    corpus=pope_counts,
    outputs=("pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio"),
))
register_metric(Metric(
    name="vqa_accuracy",
    definition=(
        "VQA accuracy: answer and the human answers normalised as the VQA v2 / EvalAI processor does "
        "(lowercase, punctuation, number words to digits, articles dropped, contractions); mean over the "
        "leave-one-out subsets of the human answers of min(1, matching answers / 3)"
    ),
    per_sample=vqa_accuracy,
))
register_metric(Metric(
    name="relaxed_accuracy",
    definition=(
        "ChartQA relaxed accuracy: answer stripped of spaces and one trailing period; if answer and gold "
        "both parse as numbers ('%' divides by 100), correct iff within 5% of the gold (a gold of 0 needs 0); "
        "else case-insensitive exact match"
    ),
    per_sample=relaxed_accuracy,
))
register_metric(Metric(
    name="gqa_exact_match",
    definition="1 if the answer equals the gold after lowercasing, removing ASCII punctuation and collapsing spaces",
    per_sample=gqa_exact_match,
))
register_metric(Metric(
    name="mmmu_accuracy",
    definition=(
        "MMMU accuracy: multiple-choice items as choice_accuracy; open items correct iff a numeric gold "
        "equals some number in the answer at 2 decimals, or a text gold occurs (lowercased) in the answer"
    ),
    per_sample=mmmu_accuracy,
))
