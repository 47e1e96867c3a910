"""A two-system run of a small VQA set for the explorer tests: images on disk (two files with the
same content, one missing), closed and open questions over three modalities, a model error, a
data error where the schema records outcomes, and hostile text in a question, an answer and a
metadata value. Metrics come from the real aggregate, so the explorer's counts can be checked
against the leaderboard's n."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from medharness.metrics.grouped import aggregate
from medharness.schema import SampleResult

# If any of these ran, it would set an attribute on <html> or replace the title.
SCRIPT_ATTACK = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
ONERROR_ATTACK = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','onerror')\">"
END_ATTACK = "</script><!-- <script>document.title='pwned'</script>"
METRICS = ["closed_accuracy", "open_token_f1"]
MODALITIES = ["ct", "xray", "pathology"]
HAS_OUTCOMES = "outcome" in SampleResult.model_fields


def write_images(data: Path) -> None:
    (data / "images").mkdir(parents=True)
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (400, 300), colour).save(data / "images" / f"img{i}.png")
    (data / "images" / "copy.png").write_bytes((data / "images" / "img0.png").read_bytes())


def rows(system: str) -> list[SampleResult]:
    out = []
    for i in range(12):
        closed = i % 3 != 2
        gold = "yes" if closed else "left lung"
        right = (i % 2 == 0) if system == "alpha" else (i % 4 != 1)
        answer = gold if right else ("no" if closed else "right kidney")
        if system == "alpha" and i == 3:
            answer = ONERROR_ATTACK + "\x00\u202e"
        if system == "beta" and i == 4:
            answer = SCRIPT_ATTACK
        question = f"question {i}?" if i else f"What is shown? {SCRIPT_ATTACK} {END_ATTACK}"
        image = ["images/img0.png", "images/img1.png", "images/img2.png", "images/copy.png"][i % 4]
        if i == 11:
            image = "images/missing.png"
        row = dict(
            id=str(i), prompt=question, prediction=answer, references=[gold], answer_type="closed" if closed else "open",
            metadata={"modality": MODALITIES[i % 3], "modality_source": "dataset",
                      "organ": ONERROR_ATTACK if i == 5 else ("head" if i < 6 else "chest")},
            images=[image],
        )
        score = 1.0 if answer == gold else 0.0
        row["scores"] = {"closed_accuracy": score if closed else None, "open_token_f1": None if closed else score}
        if system == "beta" and i == 6:
            row.update(prediction="", error="model timed out", scores={"closed_accuracy": 0.0, "open_token_f1": None})
        if system == "beta" and i == 9 and HAS_OUTCOMES:
            row.update(prediction="", prompt="", error="image not found: images/img1.png", outcome="data_error",
                       skip_reason="missing image", scores={"closed_accuracy": None, "open_token_f1": None})
        out.append(SampleResult(**row))
    return out


def make_two_systems(make_run, data: Path) -> dict[str, list[SampleResult]]:
    write_images(data)
    made = {}
    for system in ("alpha", "beta"):
        samples = rows(system)
        kept = [r for r in samples if getattr(r, "outcome", "scored") != "data_error"]
        metrics = aggregate(kept, METRICS, ["modality", "organ"], 1, 0)
        make_run(model=system, samples=samples, overall=metrics.overall, groups=metrics.groups, data_source=str(data))
        made[system] = samples
    return made
