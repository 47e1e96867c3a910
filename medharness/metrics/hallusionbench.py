"""HallusionBench (Guan et al. 2024): all-question, question-pair and figure accuracy.

The authors' code (HallusionBench `utils.py`, copied into lmms-eval's `hallusion_bench`) asks
GPT-4 whether an answer is correct, incorrect or unclear. Here the answer is read rule-based
with the POPE reader (`medharness.metrics.general.yes_no`): the gold is yes/no, so no judge is
needed. "Unclear" = no yes/no could be read; as in the authors' `assign_correctness`, an unclear
answer counts as correct on a Visual Supplement question without a figure (figure_id 0: the model
may say it does not know), and as wrong everywhere else.

- aAcc: share of questions answered correctly (`get_eval_all`).
- qAcc: share of question pairs, i.e. the same question (category, subcategory, set_id,
  question_id) asked about the original and the edited figures, whose every question is
  correct (`get_eval_pair_all`).
- fAcc: share of figures (category, subcategory, set_id, figure_id) whose every question is
  correct (`get_eval_fig`; Visual Supplement questions without a figure belong to no figure).

The loader puts each item's pair and figure keys in metadata (`question_pair`, `figure`), so the
bootstrap resamples whole pairs or figures (`Metric.cluster`).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from medharness.metrics.base import Metric, Scorable, Scored, register_metric
from medharness.metrics.general import yes_no, yes_no_gold

PAIR_KEY = "question_pair"
FIGURE_KEY = "figure"


def without_figure(item: Scorable) -> bool:
    """A Visual Supplement question asked without its figure (figure_id 0)."""
    return str(item.metadata.get("category")) == "VS" and str(item.metadata.get("figure_id")) == "0"


def hallusion_correct(prediction: str, item: Scorable) -> Optional[float]:
    gold = yes_no_gold(item)
    if gold is None:
        return None
    said = yes_no(prediction)
    if said is None:
        return 1.0 if without_figure(item) else 0.0
    return 1.0 if said == gold else 0.0


def all_correct_share(
    items: Sequence[Scored], key: str, skip: Callable[[Scorable], bool] = lambda item: False
) -> Optional[float]:
    """Share of the units (items with one value of metadata `key`) whose every item is correct."""
    units: dict[str, bool] = {}
    for position, item in enumerate(items):
        score = hallusion_correct(item.prediction, item)
        if score is None or skip(item):
            continue
        unit = str(item.metadata.get(key, f"item-{position}"))
        units[unit] = units.get(unit, True) and score == 1.0
    return sum(units.values()) / len(units) if units else None


def question_pair_accuracy(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    return {"hallusion_qacc": all_correct_share(items, PAIR_KEY)}


def figure_accuracy(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    return {"hallusion_facc": all_correct_share(items, FIGURE_KEY, skip=without_figure)}


READER = (
    "answer read as yes/no by the POPE reader (first word if yes/no, else the only one of yes/no present); "
    "unreadable = wrong, except on a Visual Supplement question without its figure (figure_id 0), where it "
    "counts as correct as in the authors' assign_correctness"
)

register_metric(Metric(
    name="hallusion_aacc",
    definition=f"HallusionBench aAcc: 1 if the answer's yes/no equals the gold (gt_answer 1 = yes, 0 = no); {READER}",
    per_sample=hallusion_correct,
))
register_metric(Metric(
    name="hallusion_qacc",
    definition=(
        "HallusionBench qAcc: share of question pairs (one question, key category_subcategory_set_id_question_id, "
        f"over the original and edited figures) whose every question is correct; {READER}"
    ),
    corpus=question_pair_accuracy,
    cluster=PAIR_KEY,
))
register_metric(Metric(
    name="hallusion_facc",
    definition=(
        "HallusionBench fAcc: share of figures (key category_subcategory_set_id_figure_id; VS questions with "
        f"figure_id 0 belong to none) whose every question is correct; {READER}"
    ),
    corpus=figure_accuracy,
    cluster=FIGURE_KEY,
))
