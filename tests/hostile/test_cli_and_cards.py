"""Hostile inputs at the CLI and card boundary, each run as a `medharness` subprocess with a
timeout: the answer is one line and exit code 2 (or, for results/, a counted warning), never a
traceback, a hang or a silent fallback. Every input is generated here; nothing is committed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.core.helpers import cli, jsonl_fixture, only_error_line

TIMEOUT = 20  # seconds; an alias bomb or a FIFO that is read would never finish within it

BILLION_LAUGHS = "adapter: mock\noptions:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
    for i in range(1, 10)
)
TASK = "format: jsonl\nsplits: [test]\nmetrics: [exact_match]\n"

# name: (card text or bytes, what the one line must say)
BAD_CARDS: dict[str, tuple[str | bytes, str]] = {
    "alias bomb": (BILLION_LAUGHS, "aliases (*name) are not allowed"),
    "merge key through an alias": ("adapter: mock\nbase: &b {batch_size: 2}\nmore:\n  <<: *b\n", "aliases (*name) are not allowed"),
    "duplicate key": ("adapter: mock\nbatch_size: 4\nbatch_size: 8\n", "duplicate key 'batch_size' (first on line 2)"),
    "duplicate option key": ("adapter: mock\noptions:\n  delay: 0\n  delay: 1\n", "duplicate key 'delay'"),
    "negative batch size": ("adapter: mock\nbatch_size: -5\n", "key 'batch_size': Input should be greater than or equal to 1"),
    "batch size as text": ("adapter: mock\nbatch_size: '8'\n", "key 'batch_size': Input should be a valid integer"),
    "random_weights as a number": ("adapter: mock\nrandom_weights: 1\n", "key 'random_weights': Input should be a valid boolean"),
    "zero max_new_tokens": ("adapter: mock\ngeneration: {max_new_tokens: 0}\n", "max_new_tokens: Input should be greater than or equal to 1"),
    "unknown generation key": ("adapter: mock\ngeneration: {temprature: 0.5}\n", "temprature: Extra inputs are not permitted"),
    "negative temperature": (TASK + "generation: {temperature: -1}\n", "key 'generation.temperature'"),
    "zero min_group_size": (TASK + "min_group_size: 0\n", "key 'min_group_size': Input should be greater than or equal to 1"),
    "selection ratio above 1": (TASK + "generation: {selection_ratio: 1.5}\n", "key 'generation.selection_ratio'"),
    "prompt with an unknown field": (TASK + "prompt: 'Q: {question} A: {answer}'\n", "prompt field {answer} is not one format 'jsonl' fills in"),
    "prompt with attribute access": (TASK + "prompt: '{question.__class__.__mro__}'\n", "is not a plain {name} field"),
    "prompt with index access": (TASK + "prompt: '{choices[0]}'\n", "is not a plain {name} field"),
    "prompt with a conversion": (TASK + "prompt: '{question!r}'\n", "prompt field {question!r} is not a plain {name} field"),
    "prompt with a format spec": (TASK + "prompt: '{question:>{choices}}'\n", "is not a plain {name} field"),
    "prompt with a positional field": (TASK + "prompt: 'Q: {0}'\n", "prompt field {0} is not a plain {name} field"),
    "prompt with an unclosed brace": (TASK + "prompt: 'Q: {question'\n", "write a literal brace as {{ or }}"),
    "open_prompt with another field": ("format: multiple_choice\noptions: {open_prompt: '{hint}'}\n", "open_prompt fills in only {question}"),
    "misspelt task option": ("format: slake\noptions: {languag: zh}\n", "unknown option 'languag'; did you mean 'language'?"),
    "task option of the wrong type": ("format: slake\noptions: {language: 3}\n", "option 'language'"),
    "misspelt model option": ("adapter: dragonfly\noptions: {attn_implementaton: sdpa}\n", "unknown option 'attn_implementaton'; did you mean 'attn_implementation'?"),
    "option of an adapter that reads none": ("adapter: majority\noptions: {C: 3}\n", "unknown option 'C'; known: none"),
    "option of the wrong type": ("adapter: mock\noptions: {delay: soon}\n", "option 'delay': Input should be a valid number"),
    "invalid UTF-8": (b"adapter: mock\ndescription: caf\xe9\n", "not UTF-8 text (bad byte at offset 30)"),
    "UTF-16": ("adapter: mock\n".encode("utf-16"), "not UTF-8 text"),
    "deeply nested": ("adapter: mock\noptions: {x: " + "[" * 50_000 + "]" * 50_000 + "}\n", "nested too deeply"),
    "python object tag": ("adapter: mock\noptions: !!python/object/apply:os.system [touch PWNED]\n", "not valid YAML (line 2)"),
    "a list, not a mapping": ("- adapter: mock\n", "a card must be a YAML mapping"),
    "empty file": ("", "a card must be a YAML mapping"),
    "neither kind": ("description: what am I\n", "a card has either `format:` (a task card) or `adapter:` (a model card)"),
    "both kinds": ("adapter: mock\nformat: jsonl\n", ", not both"),
    "oversized": ("adapter: mock\ndescription: '" + "x" * 1_000_001 + "'\n", "a card is at most 1,000,000 bytes"),
}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return jsonl_fixture(tmp_path_factory.mktemp("data"))


def test_every_bad_card_is_one_line_at_validate(tmp_path):
    # One `validate` over all the bad cards: one "invalid" line each, in order, then the count.
    cards = [write(tmp_path / f"card{i}.yaml", content) for i, (content, _) in enumerate(BAD_CARDS.values())]
    proc = cli("validate", *map(str, cards), timeout=TIMEOUT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == len(BAD_CARDS) + 1 and lines[-1] == f"error: {len(BAD_CARDS)} card(s) invalid", proc.stderr[-3000:]
    for line, card, (name, (_, expected)) in zip(lines, cards, BAD_CARDS.items()):
        assert line.startswith(f"invalid {card}: ") and expected in line, (name, line)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.parametrize("name", ["alias bomb", "duplicate key", "negative batch size", "invalid UTF-8",
                                  "option of the wrong type", "deeply nested"])
def test_bad_model_card_stops_a_run_with_one_line(name, data, tmp_path):
    card = write(tmp_path / "bad.yaml", BAD_CARDS[name][0])
    line = only_error_line(cli("run", "-t", "custom-jsonl", "-m", str(card), "--data-dir", str(data),
                         "--results", str(tmp_path / "results"), timeout=TIMEOUT))
    assert str(card) in line or "'bad'" in line
    assert BAD_CARDS[name][1] in line
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").glob("*/run.json"))


def test_unknown_option_is_caught_at_run_before_any_data_is_read(tmp_path):
    card = write(tmp_path / "slow.yaml", "adapter: mock\noptions: {delai: 0.1}\n")
    line = only_error_line(cli("run", "-t", "custom-jsonl", "-m", str(card), "--data-dir", str(tmp_path / "no-data"),
                         timeout=TIMEOUT))
    assert line == "error: model card 'slow' (adapter mock): unknown option 'delai'; did you mean 'delay'? (see docs/cards.md)"


def test_task_card_prompt_field_is_checked_at_run(data, tmp_path):
    card = write(tmp_path / "leaky.yaml", TASK + "prompt: 'Q: {question} A: {answer}'\n")
    line = only_error_line(cli("run", "-t", str(card), "-m", "mock", "--data-dir", str(data),
                         "--results", str(tmp_path / "results"), timeout=TIMEOUT))
    assert "prompt field {answer} is not one format 'jsonl' fills in (it has: {question}, {choices})" in line


def test_card_that_is_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in only_error_line(cli("run", "-t", "custom-jsonl", "-m", str(fifo), timeout=TIMEOUT))


def test_validate_decides_the_kind_by_content_not_folder(tmp_path):
    # A model card kept outside models/ (and one in a folder named tasks/) are valid model cards.
    (tmp_path / "tasks").mkdir()
    cards = [write(tmp_path / "mine.yaml", "adapter: mock\nbatch_size: 2\n"),
             write(tmp_path / "tasks" / "also-mine.yaml", "adapter: constant\noptions: {text: 'no'}\n"),
             write(tmp_path / "my-task.yaml", TASK + "prompt: '{question}\\n{choices}'\n")]
    proc = cli("validate", *map(str, cards), timeout=TIMEOUT)
    assert proc.returncode == 0 and proc.stderr.strip() == "all cards valid", proc.stderr


def test_results_with_unreadable_lines_and_files_are_analyzed_with_a_counted_warning(data, tmp_path):
    results = tmp_path / "results"
    assert cli("run", "-t", "custom-jsonl", "-m", "mock", "--data-dir", str(data), "--limit", "6",
               "--results", str(results), "--quiet", timeout=60).returncode == 0
    [run_dir] = [p for p in results.iterdir() if (p / "run.json").exists()]
    with (run_dir / "samples.jsonl").open("ab") as handle:
        handle.write(b'{"id": "caf\xe9"}\n' + "{\"id\": \"\\ud800\"".encode() + b"\nnot json\n")
    for name, content in (("bad-utf8", b'{"run_id": "\xff"}'), ("truncated", b'{"run_id": ')):
        (results / name).mkdir()
        (results / name / "run.json").write_bytes(content)
    (results / "pipe").mkdir()
    os.mkfifo(results / "pipe" / "run.json")
    shown = {}
    for command in (["analyze", "modality"], ["report"]):
        proc = cli(*command, "--results", str(results), "--out", str(tmp_path / "out"), timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        shown[command[0]] = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
        assert any("skipped 3 unreadable run(s)" in w for w in shown[command[0]]), proc.stderr
    assert any("skipped 3 unreadable line(s) of samples.jsonl (line 7, 8, 9)" in w for w in shown["analyze"]), shown
    summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert summary["n_samples"] + summary["n_skipped"] == 6  # the readers never rewrite results
