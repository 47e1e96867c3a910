"""A judge: a second model, named by its model card, that grades answers for judged metrics
(the runner builds it and hands it to them; its card and fingerprint go into the run spec).

Any adapter can judge (an `openai` card for a hosted or vLLM-served LLM, an `hf` card for a
local one). Judges are text-only here: they see the question, the references and the answer.
One judge per card name is built per process and reused across batches and tasks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from medharness.models.base import ModelAdapter
from medharness.registry import ADAPTERS
from medharness.schema import GenerationSettings, ModelCard, Request

# A parser turns a raw verdict into a score, or None when the verdict cannot be read.
VerdictParser = Callable[[str], Optional[float]]


@dataclass
class Verdict:
    """The outcome of judging one item; `record` is what the sample row stores."""

    score: Optional[float]
    record: dict


class Judge:
    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.adapter: ModelAdapter = ADAPTERS.get(card.adapter)(card)
        self.fingerprint = self.adapter.fingerprint()

    def grade(
        self,
        prompts: Sequence[str],
        parse: VerdictParser,
        max_new_tokens: int,
        retry_prompts: Optional[Sequence[str]] = None,
        temperatures: Sequence[float] = (0.0,),
    ) -> list[Verdict]:
        """Ask each prompt at temperatures[0]; verdicts that do not parse are asked again (with
        `retry_prompts` if given) at the next temperature, one ask per listed temperature. A
        verdict still unreadable keeps score None and `parsed: False`; a judge request that
        fails (after the adapter's own retries) keeps score None and its `error`."""
        records = [{"judge": self.card.name, "judge_fingerprint": self.fingerprint, "prompt": p,
                    "verdict": None, "parsed": False, "attempts": 0} for p in prompts]
        scores: list[Optional[float]] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        for round_, temperature in enumerate(temperatures):
            if not pending:
                break
            ask = retry_prompts if (round_ and retry_prompts is not None) else prompts
            settings = GenerationSettings.model_validate(
                {"max_new_tokens": max_new_tokens, **self.card.generation, "temperature": temperature})
            requests = [Request(sample_id=str(i), prompt=ask[i], generation=settings) for i in pending]
            still = []
            for i, prediction in zip(pending, self.adapter.generate(requests)):
                record = records[i]
                record.update(prompt=ask[i], attempts=record["attempts"] + 1)
                if prediction.error:
                    record["error"] = prediction.error
                    continue
                record["verdict"] = prediction.text
                scores[i] = parse(prediction.text)
                if scores[i] is None:
                    still.append(i)
                else:
                    record["parsed"] = True
            pending = still
        return [Verdict(s, r) for s, r in zip(scores, records)]


_judges: dict[str, Judge] = {}
_lock = threading.Lock()


def get_judge(card: ModelCard) -> Judge:
    with _lock:
        if card.name not in _judges:
            _judges[card.name] = Judge(card)
        return _judges[card.name]
