"""Caption metrics: the COCO caption evaluation (BLEU-1..4, METEOR, ROUGE-L, CIDEr through
pycocoevalcap and its PTB tokenizer, corpus level as papers report them), ROUGE-L per sample
through rouge-score for breakdowns with confidence intervals, and SPICE on request.

A corpus is the items of one group. Items without any non-blank reference are left out of it
(pycocoevalcap asserts on them). Whatever cannot be computed is None with one warning line,
which the runner records in run.json; the run itself never fails on a caption metric.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence

from medharness.metrics.base import Metric, Scorable, Scored, register_metric
from medharness.metrics.coco_java import (
    JavaScorerError, JavaUnavailable, java_available, meteor_corpus, ptb_tokenize,
)

COCO_OUTPUTS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")

JAVA_MISSING = (
    "caption metrics: no Java runtime (`java` is not on PATH), so BLEU-1..4, METEOR, ROUGE-L and "
    "CIDEr (which need pycocoevalcap's Java tokenizer) are None; install a headless JRE "
    "(apt-get install openjdk-17-jre-headless) and rescore with `medharness score`"
)
NO_REFERENCE = (
    "caption metrics: samples without a reference caption are left out of BLEU/METEOR/ROUGE-L/"
    "CIDEr/SPICE (their rouge_l_sample is None)"
)
EMPTY_REFERENCES = (
    "caption metrics: CIDEr is undefined on a corpus whose references are all empty after PTB "
    "tokenisation (pycocoevalcap fails with max() of an empty sequence); reported as None"
)

METEOR_MAX_TOKENS = 2000
METEOR_CUT = (
    f"caption metrics: predictions longer than {METEOR_MAX_TOKENS} tokens are cut to their first "
    f"{METEOR_MAX_TOKENS} tokens for METEOR only (METEOR 1.5's aligner runs out of memory on long "
    "repetitive text)"
)

Texts = tuple[list[str], list[list[str]]]


def reference_texts(item: Scorable) -> list[str]:
    """The item's references that hold any text."""
    return [r for r in item.references if r and r.strip()]


def corpus_texts(items: Sequence[Scored]) -> Texts:
    """(predictions, references) of the items that have a reference; warns if any has none."""
    hypotheses, references = [], []
    for item in items:
        refs = reference_texts(item)
        if refs:
            hypotheses.append(item.prediction or "")
            references.append(refs)
    if len(hypotheses) < len(items):
        warnings.warn(NO_REFERENCE, stacklevel=2)
    return hypotheses, references


def tokenized(hypotheses: list[str], references: list[list[str]]) -> tuple[dict, dict]:
    """pycocoevalcap's (gts, res) dictionaries, keyed 0..n-1 in corpus order."""
    flat = [r for refs in references for r in refs]
    tokens = ptb_tokenize(hypotheses + flat)
    res = {i: [t] for i, t in enumerate(tokens[: len(hypotheses)])}
    rest = iter(tokens[len(hypotheses):])
    gts = {i: [next(rest) for _ in refs] for i, refs in enumerate(references)}
    return gts, res


def coco_scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, Optional[float]]:
    """The COCO caption metrics of one corpus. Raises JavaUnavailable or JavaScorerError when
    the tokenizer cannot run; a METEOR failure alone makes only METEOR None."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not java_available():
        raise JavaUnavailable("no `java` on PATH")
    gts, res = tokenized(hypotheses, references)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out: dict[str, Optional[float]] = {f"bleu_{n}": float(b) for n, b in enumerate(bleu, 1)}
    try:
        out["meteor"] = meteor_corpus([gts[i] for i in gts], meteor_hypotheses([res[i][0] for i in res]))
    except (JavaScorerError, JavaUnavailable, OSError, ValueError) as exc:
        warnings.warn(f"caption metrics: METEOR failed ({exc}); reported as None", stacklevel=2)
        out["meteor"] = None
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    if any(ref for refs in gts.values() for ref in refs):
        out["cider"] = float(Cider().compute_score(gts, res)[0])
    else:
        warnings.warn(EMPTY_REFERENCES, stacklevel=2)
        out["cider"] = None
    return out


def meteor_hypotheses(tokenized_hypotheses: list[str]) -> list[str]:
    cut = [" ".join(h.split(" ")[:METEOR_MAX_TOKENS]) for h in tokenized_hypotheses]
    if cut != tokenized_hypotheses:
        warnings.warn(METEOR_CUT, stacklevel=3)
    return cut


def coco_caption(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    hypotheses, references = corpus_texts(items)
    if not hypotheses:
        return dict.fromkeys(COCO_OUTPUTS)
    try:
        return coco_scores(hypotheses, references)
    except JavaUnavailable:
        warnings.warn(JAVA_MISSING, stacklevel=2)
    except (JavaScorerError, OSError) as exc:
        warnings.warn(f"caption metrics: the PTB tokenizer failed ({exc}); BLEU/METEOR/ROUGE-L/CIDEr are None", stacklevel=2)
    return dict.fromkeys(COCO_OUTPUTS)


_rouge_scorer = None


def rouge_l_sample(prediction: str, item: Scorable) -> Optional[float]:
    """rouge-score's ROUGE-L F1 (beta 1, its default tokenizer, no stemming), best over the
    references; None when the item has no reference."""
    global _rouge_scorer
    refs = reference_texts(item)
    if not refs:
        return None
    if _rouge_scorer is None:
        from rouge_score import rouge_scorer

        _rouge_scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return max(_rouge_scorer.score(ref, prediction or "")["rougeL"].fmeasure for ref in refs)


def spice_jars() -> list[Path]:
    from pycocoevalcap.spice import get_stanford_models as models

    lib = Path(models.__file__).parent / models.SPICELIB
    return [lib / f"{models.JAR}.jar", lib / f"{models.JAR}-models.jar"]


def spice_problem() -> Optional[str]:
    """Why SPICE cannot run here, or None. pycocoevalcap would download Stanford CoreNLP on
    first use; this never does."""
    if not java_available():
        return "SPICE: no Java runtime (`java` is not on PATH); SPICE is None"
    missing = [p for p in spice_jars() if not p.exists()]
    if missing:
        return (
            f"SPICE: Stanford CoreNLP 3.6.0 is missing ({', '.join(p.name for p in missing)} in "
            f"{missing[0].parent}); copy both jars from stanford-corenlp-full-2015-12-09.zip there, "
            "or drop 'spice' from the card's metrics; SPICE is None"
        )
    return None


def spice_corpus(items: Sequence[Scored]) -> dict[str, Optional[float]]:
    hypotheses, references = corpus_texts(items)
    problem = spice_problem()
    if problem or not hypotheses:
        if problem:
            warnings.warn(problem, stacklevel=2)
        return {"spice": None}
    from pycocoevalcap.spice.spice import Spice

    try:
        gts, res = tokenized(hypotheses, references)
        return {"spice": float(Spice().compute_score(gts, res)[0])}
    except Exception as exc:  # SPICE's Java side fails in many ways (memory, cache, JVM version)
        warnings.warn(f"SPICE: failed ({type(exc).__name__}: {exc}); SPICE is None", stacklevel=2)
        return {"spice": None}


COCO_DEFINITION = (
    "COCO caption evaluation (pycocoevalcap 1.2): texts PTB-tokenised by Stanford CoreNLP 3.4.1 "
    "(lowercased, punctuation tokens removed, every line break a space), then over the group's "
    "corpus: BLEU-1..4 (pooled n-gram counts, 'closest' reference length), METEOR 1.5 (en, -norm, "
    "pooled statistics; a prediction is cut to its first 2000 tokens for METEOR only), ROUGE-L (mean over items of the LCS F-score with beta 1.2, best reference), "
    "CIDEr-D (IDF from this group's references, sigma 6). Scale 0-1 (CIDEr 0-10); papers print x100. "
    "Items without a reference are left out."
)

register_metric(Metric(
    name="coco_caption", definition=COCO_DEFINITION, corpus=coco_caption, outputs=COCO_OUTPUTS,
    bootstrap=False,
))
register_metric(Metric(
    name="rouge_l_sample",
    definition=(
        "ROUGE-L F1 per sample by rouge-score (its tokenizer: lowercase, runs of [a-z0-9]; no "
        "stemming), the best over the references; None without a reference. Differs from the "
        "corpus rouge_l (PTB tokens, beta 1.2)."
    ),
    per_sample=rouge_l_sample,
))
register_metric(Metric(
    name="spice",
    definition=(
        "SPICE 1.0 through pycocoevalcap on PTB-tokenised texts (mean F-score of scene-graph "
        "tuples); optional: needs Java and Stanford CoreNLP 3.6.0, which is never downloaded."
    ),
    corpus=spice_corpus, bootstrap=False,
))
