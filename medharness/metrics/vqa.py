"""Medical VQA metrics, one named definition each (docs/medical-vqa.md has worked examples).

Closed metrics apply to items whose `answer_type` is "closed" and return None on open items;
open metrics the reverse. An item with several references scores its best reference. Each
metric names its normalisation from `medharness.text`.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Optional

from medharness.metrics.base import Metric, Scorable, register_metric
from medharness.text import llavamed, lmms_slake, squad, vqa_v2, word_tokens

ItemScore = Callable[[str, str], float]  # (prediction, one reference) -> score


def best_over_references(prediction: str, item: Scorable, score: ItemScore) -> float:
    return max((score(prediction, ref) for ref in item.references), default=0.0)


def for_type(answer_type: str, score: ItemScore) -> Callable[[str, Scorable], Optional[float]]:
    def per_sample(prediction: str, item: Scorable) -> Optional[float]:
        if item.answer_type != answer_type:
            return None
        return best_over_references(prediction, item, score)

    return per_sample


def exact_match_lmms_slake(prediction: str, reference: str) -> float:
    return float(lmms_slake(prediction) == lmms_slake(reference))


def substring_llavamed(prediction: str, reference: str) -> float:
    """LLaVA-Med's closed rule as fixed by its PR #35: a prediction mentioning "yes" or "no"
    anywhere (as substrings, so "normal", "not" and "nodule" mention "no") is right iff the gold
    answer is a substring of it; any other prediction is wrong."""
    pred, gold = llavamed(prediction), llavamed(reference)
    if "yes" in pred or "no" in pred:
        return float(gold in pred)
    return 0.0


def token_f1_squad(prediction: str, reference: str) -> float:
    pred, gold = word_tokens(squad(prediction)), word_tokens(squad(reference))
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match_squad(prediction: str, reference: str) -> float:
    return float(word_tokens(squad(prediction)) == word_tokens(squad(reference)))


def recall_llavamed(prediction: str, reference: str) -> float:
    """`calculate_f1score`'s recall from LLaVA-Med's run_eval.py, quirks included: inputs are
    normalised twice (once by the caller, once inside), true positives count the PREDICTION's
    repeats of a shared word, and an empty prediction or no shared word scores 0."""
    pred = Counter(llavamed(llavamed(prediction)).split())
    gold = Counter(llavamed(llavamed(reference)).split())
    if not pred or not gold:
        return 0.0
    tp = sum(n for w, n in pred.items() if w in gold)
    fn = sum(n for w, n in gold.items() if w not in pred)
    return tp / (tp + fn) if tp else 0.0


def set_recall_at(threshold: float) -> ItemScore:
    def score(prediction: str, reference: str) -> float:
        pred, gold = set(word_tokens(vqa_v2(prediction))), set(word_tokens(vqa_v2(reference)))
        if not gold:
            return float(not pred)
        return float(len(pred & gold) / len(gold) >= threshold)

    return score


closed_accuracy = for_type("closed", exact_match_lmms_slake)
open_token_f1 = for_type("open", token_f1_squad)


def overall(prediction: str, item: Scorable) -> Optional[float]:
    if item.answer_type == "closed":
        return closed_accuracy(prediction, item)
    if item.answer_type == "open":
        return open_token_f1(prediction, item)
    return None


register_metric(Metric(
    name="closed_accuracy",
    definition="Closed questions only: 1 if the prediction equals a reference after lmms-eval's SLAKE normalisation (lmms_slake), else 0.",
    per_sample=closed_accuracy,
))
register_metric(Metric(
    name="closed_accuracy_llavamed",
    definition="Closed questions only, LLaVA-Med run_eval.py (after its PR #35): after LLaVA-Med normalisation, 1 if the prediction contains 'yes' or 'no' as a substring and contains the reference as a substring, else 0.",
    per_sample=for_type("closed", substring_llavamed),
))
register_metric(Metric(
    name="open_token_f1",
    definition="Open questions only: SQuAD v1.1 token F1 (squad normalisation, token multiset overlap, CJK characters as single tokens; 1 if both are empty), best over references.",
    per_sample=open_token_f1,
))
register_metric(Metric(
    name="open_recall_llavamed",
    definition="Open questions only: LLaVA-Med run_eval.py recall, tp/(tp+fn) over whitespace words after LLaVA-Med normalisation, tp counting the prediction's repeats.",
    per_sample=for_type("open", recall_llavamed),
))
register_metric(Metric(
    name="open_exact_match",
    definition="Open questions only: 1 if the prediction equals a reference after squad normalisation (SQuAD v1.1 exact match), else 0.",
    per_sample=for_type("open", exact_match_squad),
))
register_metric(Metric(
    name="open_accuracy_at_0.75",
    definition="Open questions only: 1 if at least 75% of the reference's distinct words (vqa_v2 normalisation) occur in the prediction, else 0.",
    per_sample=for_type("open", set_recall_at(0.75)),
))
register_metric(Metric(
    name="overall",
    definition="Every closed or open question: closed_accuracy on closed questions and open_token_f1 on open ones, averaged over all questions together.",
    per_sample=overall,
))
