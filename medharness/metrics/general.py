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
from medharness.text import vqa_v2

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


def _chartqa_float(text: str) -> Optional[float]:
    try:
        return float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correctness(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's relaxed correctness as its authors' code (pix2struct's metrics.py, copied by
    lmms-eval) computes it. The numeric branch needs a parsed, NON-ZERO target (the code tests the
    float's truth value), so a gold of 0 falls through to the string comparison."""
    said, gold = _chartqa_float(prediction), _chartqa_float(target)
    if said is not None and gold:
        return abs(said - gold) / abs(gold) <= max_relative_change
    return prediction.lower() == target.lower()


def relaxed_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    # The official evaluate_relaxed_accuracy strips the answer (not the gold) and takes the best gold.
    answer = prediction.strip()
    return 1.0 if any(relaxed_correctness(answer, g) for g in item.references) else 0.0


def relaxed_match_lenient(prediction: str, gold: str, tolerance: float = 0.05) -> bool:
    answer = prediction.strip().removesuffix(".").strip()
    gold = gold.strip()
    said, target = _chartqa_float(answer), _chartqa_float(gold)
    if said is not None and target is not None:
        if target == 0:
            return said == 0
        return abs(said - target) / abs(target) <= tolerance
    return answer.lower() == gold.lower()


def relaxed_accuracy_lenient(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    return 1.0 if any(relaxed_match_lenient(prediction, g) for g in item.references) else 0.0


# ---------------------------------------------------------------- GQA (exact match)

_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def gqa_normalise(text: str) -> str:
    """HF evaluate's exact_match with ignore_case and ignore_punctuation, as lmms-eval's gqa.yaml
    sets it: lowercase, delete ASCII punctuation; whitespace and articles stay as they are."""
    return text.lower().translate(_STRIP_PUNCTUATION)


def gqa_exact_match(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    # lmms-eval's model wrappers strip the generated text before the metric sees it.
    answer = gqa_normalise(prediction.strip())
    return 1.0 if any(answer == gqa_normalise(g) for g in item.references) else 0.0


def gqa_exact_match_lenient(prediction: str, item: Scorable) -> Optional[float]:
    if not item.references:
        return None
    answer = " ".join(gqa_normalise(prediction).split())
    return 1.0 if any(answer == " ".join(gqa_normalise(g).split()) for g in item.references) else 0.0


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
        "ChartQA relaxed correctness as the official code computes it: answer stripped of surrounding "
        "whitespace; if answer and gold both parse as Python floats (a trailing '%' divides by 100) and the "
        "gold is non-zero, correct iff |answer-gold|/|gold| <= 0.05; otherwise case-insensitive string "
        "equality (so 'Yes.' vs 'Yes' and '0.0' vs '0' are wrong); best over golds"
    ),
    per_sample=relaxed_accuracy,
))
register_metric(Metric(
    name="relaxed_accuracy_lenient",
    definition=(
        "relaxed_accuracy with a friendlier reading (NOT comparable to published ChartQA numbers): answer "
        "and gold stripped, one trailing period dropped from the answer; a gold of 0 is compared "
        "numerically (needs exactly 0)"
    ),
    per_sample=relaxed_accuracy_lenient,
))
register_metric(Metric(
    name="gqa_exact_match",
    definition=(
        "lmms-eval's GQA exact_match (HF evaluate, ignore_case and ignore_punctuation): the answer stripped of "
        "surrounding whitespace equals a gold after lowercasing and deleting ASCII punctuation; inner "
        "whitespace and articles are kept"
    ),
    per_sample=gqa_exact_match,
))
register_metric(Metric(
    name="gqa_exact_match_lenient",
    definition=(
        "gqa_exact_match with runs of whitespace collapsed to one space (NOT comparable to published GQA numbers)"
    ),
    per_sample=gqa_exact_match_lenient,
))
register_metric(Metric(
    name="mmmu_accuracy",
    definition=(
        "MMMU accuracy: multiple-choice items as choice_accuracy; open items correct iff a numeric gold "
        "equals some number in the answer at 2 decimals, or a text gold occurs (lowercased) in the answer"
    ),
    per_sample=mmmu_accuracy,
))
