"""ProbMed (Yan et al. 2024, "Worse than Random?"): accuracy per question type with and without
the adversarial pair, exactly as the authors' `eval/calculate_score.py` computes it.

Each image gets yes/no questions of five types, named by `qa_type` in test.json:
`modality_gt` / `modality_hallu`, `body_part_gt` / `body_part_hallu` (organ), `abnormality`,
`entity_gt_N` / `entity_hallu_N` (condition/finding; a lone `entity_hallu` when the image has no
abnormality) and `grounding_gt_N` / `grounding_hallu_N` (position). A `_gt` question asks about
a true attribute (gold yes), its `_hallu` partner about a hallucinated one (gold no).

The reader is calculate_score.py's `get_score_binary`, kept as it is because the published
numbers use it: for gold "yes" the answer must contain "Yes" (case-sensitive) or be "yes" /
"yes."; for gold "no" it must contain "No" (so "Not visible" counts as no) or be "no" / "no.".

Per image type (the release's `image_type`, one modality and organ) and question type:
- modality, organ: images with both questions; accuracy = both right, "no adversarial pair"
  accuracy = the `_gt` question right; num = those images.
- abnormality: plain accuracy over its questions; num = questions.
- condition, position: images with at least one complete pair (or the lone `entity_hallu`);
  accuracy = every question right, "no adversarial pair" = every `_gt` question right; the
  denominator is those images, but num = ALL images of the image type (the script's
  `len(score[...])`, which also counts images without such questions).
Across image types the script weights each type's accuracy by num; the overall score weights
each question type's accuracy by its num the same way (the "no adversarial pair" overall leaves
abnormality out, as the script does). A group with no scorable unit of a question type (the
script would divide by zero there) contributes nothing to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from medharness.metrics.base import Metric, Scorable, Scored, register_metric
from medharness.metrics.general import yes_no_gold

IMAGE_KEY = "image_id"
# The question types as the paper's tables name them; the loader reads each question's type from
# its qa_type (metadata `question_type`), in calculate_score.py's order.
QUESTION_TYPES = ("modality", "organ", "abnormality", "condition", "position")
PAIRED_TYPES = ("modality", "organ")
LISTED_TYPES = ("condition", "position")
LONE_CONDITION = "entity_hallu"  # the only condition question of an image without abnormality


def binary_score(response: str, gold: str) -> float:
    """calculate_score.py's get_score_binary."""
    response = response.strip()
    if gold == "yes":
        return 1.0 if "Yes" in response or response.lower() in ("yes", "yes.") else 0.0
    return 1.0 if "No" in response or response.lower() in ("no", "no.") else 0.0


def probmed_accuracy(prediction: str, item: Scorable) -> Optional[float]:
    gold = yes_no_gold(item)
    return None if gold is None else binary_score(prediction, gold)


@dataclass(frozen=True)
class TypeScore:
    """One question type within one image type: the script's acc, acc w.o. the pair, and num."""

    paired: Optional[float]
    original: Optional[float]
    num: int


Questions = dict[str, dict[str, float]]  # question type -> qa_type -> score, for one image


def images_of(items: Sequence[Scored]) -> dict[str, dict[str, Questions]]:
    """image_type -> image id -> the image's scored questions."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for position, item in enumerate(items):
        score = probmed_accuracy(item.prediction, item)
        if score is None:
            continue
        image_type = str(item.metadata.get("image_type"))
        image = str(item.metadata.get(IMAGE_KEY, f"item-{position}"))
        questions = out.setdefault(image_type, {}).setdefault(image, {})
        questions.setdefault(str(item.metadata.get("question_type")), {})[str(item.metadata.get("qa_type"))] = score
    return out


def is_adversarial(qa_type: str) -> bool:
    return "hallu" in qa_type


def pair_units(questions: dict[str, float]) -> list[list[float]]:
    """The (original, adversarial) pairs of one image for a listed question type, matched by the
    qa_type's number (`entity_gt_2` with `entity_hallu_2`); a lone `entity_hallu` replaces them,
    as in the script."""
    if LONE_CONDITION in questions:
        return [[questions[LONE_CONDITION]]]
    adversarial = {qa.rsplit("_", 1)[-1]: s for qa, s in questions.items() if is_adversarial(qa)}
    return [[s, adversarial[qa.rsplit("_", 1)[-1]]] for qa, s in questions.items()
            if not is_adversarial(qa) and qa.rsplit("_", 1)[-1] in adversarial]


def type_scores(images: dict[str, Questions]) -> dict[str, TypeScore]:
    """The five question types' scores over the images of one image type."""
    out: dict[str, TypeScore] = {}
    abnormal = [s for q in images.values() for s in q.get("abnormality", {}).values()]
    if abnormal:
        out["abnormality"] = TypeScore(sum(abnormal) / len(abnormal), None, len(abnormal))
    for name in PAIRED_TYPES:
        pairs = []
        for q in images.values():
            scores = q.get(name, {})
            original = [s for qa, s in scores.items() if not is_adversarial(qa)]
            adversarial = [s for qa, s in scores.items() if is_adversarial(qa)]
            if len(original) == 1 and len(adversarial) == 1:
                pairs.append((original[0], adversarial[0]))
        if pairs:
            out[name] = TypeScore(sum(g == 1 and h == 1 for g, h in pairs) / len(pairs),
                                  sum(g == 1 for g, _ in pairs) / len(pairs), len(pairs))
    for name in LISTED_TYPES:
        units = [u for u in (pair_units(q.get(name, {})) for q in images.values()) if u]
        if units:
            out[name] = TypeScore(sum(all(s == 1 for pair in u for s in pair) for u in units) / len(units),
                                  sum(all(pair[0] == 1 for pair in u) for u in units) / len(units), len(images))
    return out


def weighted(scores: list[TypeScore], field: str) -> Optional[float]:
    parts = [(getattr(s, field), s.num) for s in scores if getattr(s, field) is not None]
    total = sum(n for _, n in parts)
    return sum(v * n for v, n in parts) / total if total else None


OUTPUTS = tuple(
    name for question_type in QUESTION_TYPES
    for name in (f"probmed_{question_type}", f"probmed_{question_type}_no_adv") if name != "probmed_abnormality_no_adv"
) + ("probmed_overall", "probmed_overall_no_adv")


def probmed_scores(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    per_type = [type_scores(images) for images in images_of(items).values()]
    out: dict[str, Optional[float]] = {name: None for name in OUTPUTS}
    combined: dict[str, TypeScore] = {}
    for name in QUESTION_TYPES:
        scores = [t[name] for t in per_type if name in t]
        if not scores:
            continue
        paired = weighted(scores, "paired")
        original = weighted(scores, "original")
        combined[name] = TypeScore(paired, original, sum(s.num for s in scores))
        out[f"probmed_{name}"] = paired
        if name != "abnormality":
            out[f"probmed_{name}_no_adv"] = original
    totals = list(combined.values())
    out["probmed_overall"] = weighted(totals, "paired")
    out["probmed_overall_no_adv"] = weighted([s for n, s in combined.items() if n != "abnormality"], "original")
    return out


register_metric(Metric(
    name="probmed_accuracy",
    definition=(
        "ProbMed per question, calculate_score.py's get_score_binary: gold yes needs 'Yes' in the answer "
        "(case-sensitive) or the answer 'yes'/'yes.'; gold no needs 'No' in it or the answer 'no'/'no.'"
    ),
    per_sample=probmed_accuracy,
))
register_metric(Metric(
    name="probmed_scores",
    definition=(
        "ProbMed as calculate_score.py: per image type, modality/organ = share of images whose original AND "
        "adversarial question are right (no_adv: original right); condition/position = share of images whose "
        "every pair is right (no_adv: every original right), weighted across image types by the number of "
        "images of the type; abnormality = accuracy; overall = question types weighted by their counts; "
        "answers read by probmed_accuracy"
    ),
    corpus=probmed_scores,
    outputs=OUTPUTS,
    cluster=IMAGE_KEY,
))
