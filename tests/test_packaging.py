"""Packaging: our generically named packages are the ones in this repo; every command is documented."""

from __future__ import annotations

import importlib
import os
import re
from importlib import metadata
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import main

REPO = Path(__file__).resolve().parent.parent
COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", ["models", "pipeline", "scrapers", "config"])
def test_package_is_this_repos(name: str) -> None:
    module = importlib.import_module(name)
    locations = [Path(p).resolve() for p in getattr(module, "__path__", [])]
    assert locations and all(p.is_relative_to(REPO) for p in locations if p.exists()), locations


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`dealwatch {name} --help` shows no example"


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [n for n in COMMANDS if not re.search(rf"dealwatch[^\n`]* {re.escape(n)}\b", readme)]
    assert not missing, f"README does not show: {missing}"


def test_readme_shows_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_ci_lints_and_requires_the_models() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make lint" in ci
    assert "export DEALWATCH_REQUIRE_MODEL=1" in ci


def test_installed_models_are_the_pinned_ones() -> None:
    """Each model of requirements-model.txt is installed at its pinned version, or (for developers
    whose machine cannot install it) not at all; under DEALWATCH_REQUIRE_MODEL=1 (CI) not at all
    is a failure."""
    required = os.environ.get("DEALWATCH_REQUIRE_MODEL") == "1"
    lines = (REPO / "requirements-model.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split()[0].split("==") for line in lines if line.strip() and not line.startswith("#"))
    assert pins
    for name, pinned in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            assert not required, f"{name} is not installed, and DEALWATCH_REQUIRE_MODEL=1 requires it"
            continue
        assert installed == pinned, f"{name} {installed} is installed; requirements-model.txt pins {pinned}"


def test_top_level_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_usage_error_exit_code_is_2() -> None:
    result = CliRunner().invoke(main, ["queue", "--limit", "many"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert isinstance(main, click.Group)
