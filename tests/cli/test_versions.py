"""The CLI's error handling is tested against the versions in constraints.txt; a different
typer or click installed (a change of how usage errors are raised) shows up here first."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.core.helpers import REPO


def constrained() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    return pins


@pytest.mark.parametrize("package", ["typer", "click"])
def test_installed_version_is_the_constrained_one(package):
    assert version(package) == constrained()[package], (
        f"{package} {version(package)} is installed but constraints.txt pins {constrained()[package]}: "
        "run the CLI tests against it, then update constraints.txt"
    )


def test_every_line_is_an_exact_pin():
    pins = constrained()
    assert "medharness" not in pins and pins["torch"] == "2.13.0"
    assert all(v and v[0].isdigit() for v in pins.values()), pins
