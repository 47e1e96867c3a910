"""Dragonfly ablation settings (selection, levels) are named in run labels whenever set."""

import json

from medharness.report.labels import run_labels
from medharness.report.runs import load_runs


def with_generation(run_dir, **settings):
    record = json.loads((run_dir / "run.json").read_text())
    record["spec"]["generation"].update(settings)
    (run_dir / "run.json").write_text(json.dumps(record))


def test_selection_and_levels_are_named_even_without_peers(make_run, results):
    with_generation(make_run(model="df", ratio=0.5), selection="random", seed=3)
    with_generation(make_run(task="chartqa", model="df"), levels="low")
    labels = sorted(run_labels(load_runs(results).current).values())
    assert labels == ["df levels=low", "df r=0.5 selection=random"]
