"""The hallucination study: yes-ratio and false-positive rate hand-computed from samples, the
benchmarks' own scores from run.json, breakdowns, the selection-ratio trend, and the page in a
real browser."""

import csv
import re
from types import SimpleNamespace

import pytest

from medharness.errors import UserError
from medharness.report.hallucination import analyze_hallucination, usable
from medharness.schema import SampleResult
from tests.report.conftest import mv, page_renders, study_cli_works_and_refuses_a_missing_task

# (answer, gold, category): A has yes-ratio 2/4 and false yes 1/2; B 3/4 and 2/2
POPE_ROWS = [("yes", "yes", "A"), ("no", "yes", "A"), ("yes", "no", "A"), ("no", "no", "A"),
             ("yes", "yes", "B"), ("unsure", "yes", "B"), ("Yes.", "no", "B"), ("yes", "no", "B")]


def rows(answers):
    return [SampleResult(id=str(i), prediction=p, references=[g], answer_type="closed",
                         metadata={"category": c, "modality": "natural", "modality_source": "dataset"})
            for i, (p, g, c) in enumerate(answers)]


def probmed_rows(false_yes: int):
    """Two adversarial (gold no) and two original questions on one CT image; `false_yes` of the
    adversarial ones answered yes."""
    answers = [("Yes", "yes", "modality_gt"), ("Yes" if false_yes > 0 else "No", "no", "modality_hallu"),
               ("Yes", "yes", "body_part_gt"), ("Yes" if false_yes > 1 else "No", "no", "body_part_hallu")]
    return [SampleResult(id=f"1_{qa}", prediction=p, references=[g], answer_type="closed",
                         metadata={"modality": "ct", "modality_source": "dataset", "qa_type": qa, "image_id": "1"},
                         seconds=0.1, visual_tokens=100)
            for p, g, qa in answers]


def make_pope(make_run, **kw):
    return make_run(task="pope", task_format="parquet_vqa", headline="pope_f1", definitions={"pope_prf": "P/R/F1"},
                    overall={"pope_accuracy": mv(0.5), "pope_f1": mv(0.6)},
                    groups={"category": {"A": {"pope_accuracy": mv(0.5)}, "B": {"pope_accuracy": mv(0.25)}}},
                    samples=rows(POPE_ROWS), **kw)


def read_csv(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_rates_scores_and_breakdown(make_run, results, tmp_path):
    make_pope(make_run, random_weights=True)
    make_run(task="vqarad")  # not a hallucination probe: not on the page
    out = tmp_path / "out"
    written = analyze_hallucination(results, out)
    assert [p.name for p in written] == ["hallucination.md", "hallucination.csv", "hallucination.html"]
    md = (out / "hallucination.md").read_text(encoding="utf-8")
    assert md.index("random weights") < md.index("## Definitions")  # the warning heads the page
    assert "vqarad" not in md.split("## Runs")[0]
    # overall: 5 of 8 answers read as yes; 3 of the 4 gold-no items answered yes
    row = next(line for line in md.splitlines() if line.startswith("| mock"))
    assert re.match(r"\| mock \[random weights\] \| 62\.5 \[[\d.]+, [\d.]+\] n=8 \| 75\.0 \[[\d.]+, [\d.]+\] n=4 \| 50\.0 \[45\.0, 55\.0\] n=40 \| 60\.0", row)
    frame = read_csv(out / "hallucination.csv")
    by_group = {(r["key"], r["group"], r["metric"]): r for r in frame}
    assert by_group[("category", "A", "yes-ratio")]["value"] == "0.5"
    assert by_group[("category", "B", "false-positive rate (gold no)")]["value"] == "1.0"
    assert by_group[("category", "B", "pope_accuracy")]["value"] == "0.25"  # from run.json
    assert by_group[("overall", "all samples", "false-positive rate (gold no)")]["n"] == "4"


def test_selection_trend_and_older_runs_without_selection_keys(make_run, results, tmp_path):
    for ratio, false_yes in ((0.25, 0), (1.0, 2)):
        make_run(task="probmed", task_format="probmed", model="df", ratio=ratio, headline="probmed_overall",
                 definitions={"probmed_scores": "ProbMed"}, overall={"probmed_overall": mv(0.5)},
                 samples=probmed_rows(false_yes))
    out = tmp_path / "out"
    analyze_hallucination(results, out)
    html = (out / "hallucination.html").read_text(encoding="utf-8")
    assert "From r=0.25 to r=1 the false-positive rate rises (0.0 [0.0, 0.0] n=2 to 100.0 [100.0, 100.0] n=2)" in html
    # 2 gold-no items, both newly answered yes: McNemar p = 2 / 2^2 = 0.5
    assert "Paired on the gold-no items both runs answered: +100.0 [100.0, 100.0] McNemar p=0.5 n=2, not distinguishable" in html
    assert html.count('src="data:image/png;base64,') == 2  # the probe's chart and the sweep's
    frame = read_csv(out / "hallucination.csv")
    assert {(r["selection_ratio"], r["selection"], r["levels"]) for r in frame} == {("0.25", "", ""), ("1.0", "", "")}


def test_no_probe_runs_and_unknown_task(make_run, results, tmp_path):
    make_run(task="vqarad")
    analyze_hallucination(results, tmp_path / "out")
    assert "No complete runs of POPE, HallusionBench or ProbMed" in (tmp_path / "out" / "hallucination.md").read_text()
    with pytest.raises(UserError, match="no complete runs of task"):
        analyze_hallucination(results, tmp_path / "out", tasks=["pope"])


def test_data_errors_are_left_out():
    scored, skipped = SimpleNamespace(outcome="scored"), SimpleNamespace(outcome="data_error")
    older = SimpleNamespace()  # rows written before the outcome field existed
    assert usable(SimpleNamespace(samples=[scored, skipped, older])) == [scored, older]


@pytest.mark.browser
def test_page_renders_in_headless_chromium(make_run, results, tmp_path, chromium):
    make_pope(make_run, random_weights=True)
    for ratio, false_yes in ((0.25, 0), (1.0, 1)):
        make_run(task="probmed", task_format="probmed", model="df", ratio=ratio, headline="probmed_overall",
                 definitions={"probmed_scores": "ProbMed"}, overall={"probmed_overall": mv(0.5)},
                 samples=probmed_rows(false_yes))
    assert page_renders(chromium, analyze_hallucination(results, tmp_path / "out")[-1]) >= 4


def test_cli_writes_the_page_and_refuses_an_unknown_task_in_one_line(make_run, results, tmp_path):
    make_pope(make_run)
    study_cli_works_and_refuses_a_missing_task("hallucination", results, tmp_path / "out", "probmed", "pope")
