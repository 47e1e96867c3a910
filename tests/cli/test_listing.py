"""`medharness list` in an 80-column terminal: one line per card, names in natural order,
details behind --wide and `list show NAME`."""

from __future__ import annotations

import re

import pytest

from medharness.cards import card_paths
from medharness.errors import UserError
from medharness.listing import natural_key, print_listing
from tests.core.helpers import cli

NARROW = {"COLUMNS": "80"}


def listed_names(output: str, heading: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index(heading) + 2  # the title, then the header line
    names = []
    for line in lines[start:]:
        if not line.strip() or line.startswith("`"):
            break
        names.append(line.split()[0])
    return names


def test_names_sort_naturally():
    names = ["pope-random", "pope", "mmmu10", "slake-zh", "mmmu2", "pope-adversarial", "slake", "mmmu"]
    assert sorted(names, key=natural_key) == ["mmmu", "mmmu2", "mmmu10", "pope", "pope-adversarial", "pope-random", "slake", "slake-zh"]


def test_list_is_one_line_per_card_within_80_columns():
    done = cli("list", env=NARROW)
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    tasks, models = listed_names(done.stdout, "tasks"), listed_names(done.stdout, "models")
    assert tasks == sorted(card_paths("tasks"), key=natural_key) and models == sorted(card_paths("models"), key=natural_key)
    assert tasks.index("pope") < tasks.index("pope-adversarial")
    assert "\u2026" in done.stdout  # long descriptions are cut, not wrapped


def test_wide_shows_metrics_and_sources():
    done = cli("list", "tasks", "--wide", env={"COLUMNS": "250"})
    assert done.returncode == 0 and "metrics" in done.stdout and "source" in done.stdout
    assert "open_token_f1" in done.stdout


def test_show_prints_one_card_in_full():
    done = cli("list", "show", "vqarad", env=NARROW)
    assert done.returncode == 0, done.stderr
    for field in ("format", "metrics", "group_by", "prompt", "source"):
        assert any(line.split()[:1] == [field] for line in done.stdout.splitlines()), field


@pytest.mark.parametrize("args, message", [
    (("show", "vqarda"), "unknown card 'vqarda'; did you mean 'vqarad'"),
    (("show", None), "needs a task or model card name"),
    (("tasks", "vqarad"), "takes no name"),
])
def test_listing_mistakes_are_user_errors(args, message):
    with pytest.raises(UserError, match=re.escape(message)):
        print_listing(*args)


def test_a_listing_mistake_is_one_line_on_the_command_line():
    done = cli("list", "show", "vqarda", env=NARROW)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert " ".join(done.stderr.split()).startswith("error: unknown card 'vqarda'")
