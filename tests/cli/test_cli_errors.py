"""User mistakes: one line on stderr, exit code 2, no traceback (unless --debug)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.helpers import REPO, cli, jsonl_fixture, model_card, only_error_line


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    text = " ".join(proc.stderr.split())
    assert text.startswith("error:")
    return text


# Every kind of usage mistake, on several commands: click's parser raises them (typer 0.29
# from its vendored copy of click), and each must end as one line with exit code 2.
USAGE_MISTAKES = {
    "unknown option": (["run", "--modle", "x"], "No such option: --modle"),
    "missing options": (["run"], "Missing option '--task'"),
    "missing option value": (["report", "--results"], "'--results' requires an argument"),
    "zero limit": (["run", "-t", "custom-jsonl", "-m", "mock", "--limit", "0"], "Invalid value for '--limit'"),
    "text batch size": (["run", "-t", "custom-jsonl", "-m", "mock", "--batch-size", "x"], "Invalid value for '--batch-size'"),
    "unknown command": (["frobnicate"], "No such command 'frobnicate'"),
    "unknown subcommand": (["analyze", "frobnicate"], "No such command 'frobnicate'"),
    "extra argument": (["report", "extra"], "unexpected extra argument"),
    "missing argument": (["fixtures"], "Missing argument 'OUT'"),
    "score without predictions": (["score", "-t", "custom-jsonl"], "Missing option '--predictions'"),
}


@pytest.mark.parametrize("case", USAGE_MISTAKES)
def test_usage_mistake_is_one_line(case):
    args, expected = USAGE_MISTAKES[case]
    line = only_error_line(cli(*args, timeout=30))
    assert expected.lower() in line.lower() and "--help" in line  # click's wording varies in case only


def test_interrupt_says_how_far_it_got_and_resumes(data, tmp_path):
    card = model_card(tmp_path / "slow.yaml", adapter="mock", batch_size=1, options={"delay": 0.15})
    args = ["run", "-t", "custom-jsonl", "-m", str(card), "--data-dir", str(data), "--limit", "8",
            "--results", str(tmp_path / "results"), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "medharness", *args], cwd=REPO, text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in (tmp_path / "results").glob("*/samples.jsonl")):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never started writing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    match = re.fullmatch(r"interrupted after (\d+) of 8 samples; run the same command again to resume", stderr.strip())
    assert match and 1 <= int(match.group(1)) < 8, stderr
    again = cli(*args)
    assert again.returncode == 0 and "6 scored, 2 skipped" in " ".join(again.stderr.split()), again.stderr


def test_typo_in_task_gets_did_you_mean():
    assert "did you mean 'custom-jsonl'" in one_line_error(cli("run", "--task", "custom-jsnl", "--model", "mock"))


def test_typo_in_model_gets_did_you_mean():
    assert "did you mean 'majority'" in one_line_error(cli("run", "--task", "custom-jsonl", "--model", "majorty"))


def test_debug_shows_traceback():
    proc = cli("--debug", "run", "--task", "custom-jsnl", "--model", "mock")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_unknown_card_key_is_rejected(tmp_path):
    card = tmp_path / "bad.yaml"
    card.write_text("adapter: mock\nbatchsize: 3\n")
    text = one_line_error(cli("run", "--task", "custom-jsonl", "--model", str(card)))
    assert str(card) in text and "unknown key 'batchsize'" in text


def test_malformed_yaml_names_file_and_line(tmp_path):
    card = tmp_path / "bad.yaml"
    card.write_text("adapter: mock\n  options: [1, 2\n")
    text = one_line_error(cli("run", "--task", "custom-jsonl", "--model", str(card)))
    assert str(card) in text and "not valid YAML (line 2)" in text
    proc = cli("validate", str(card))
    assert proc.returncode == 2 and f"invalid {card}: not valid YAML" in " ".join(proc.stderr.split())


def test_results_folder_not_writable(data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    text = one_line_error(cli("run", "--task", "custom-jsonl", "--model", "mock", "--data-dir", str(data),
                              "--results", str(blocker / "results")))
    assert "not writable" in text


def test_missing_data_dir():
    text = one_line_error(cli("run", "--task", "custom-jsonl", "--model", "mock", "--data-dir", "/nonexistent"))
    assert "does not exist" in text


def test_bad_selection_ratio():
    assert "outside (0, 1]" in one_line_error(cli("run", "--task", "custom-jsonl", "--model", "mock", "--selection-ratio", "1.5"))


def test_help_for_every_command():
    for command in ("run", "score", "list", "validate", "demo", "report", "fixtures"):
        proc = cli(command, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout, command


def test_validate_passes_on_shipped_cards():
    proc = cli("validate")
    assert proc.returncode == 0, proc.stderr


def test_list_shows_tasks_and_models():
    proc = cli("list")
    assert proc.returncode == 0 and "custom-jsonl" in proc.stdout and "majority" in proc.stdout


def test_a_failing_task_does_not_stop_the_others(tmp_path):
    from medharness.fixtures.base import write_fixture

    env = {"MEDHARNESS_MMVET_DIR": str(write_fixture("mmvet", tmp_path)),
           "MEDHARNESS_POPE_DIR": str(write_fixture("pope", tmp_path))}
    proc = cli("run", "--task", "mmvet", "--task", "pope", "--model", "constant", "--quiet",
               "--results", str(tmp_path / "results"), env=env)
    text = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error (mmvet / constant): mmvet_judge needs a judge model" in text
    assert "error: 1 run(s) failed: mmvet/constant" in text
    runs = [p.name for p in (tmp_path / "results").iterdir() if (p / "run.json").exists()]
    assert len(runs) == 1 and runs[0].startswith("pope__constant")
