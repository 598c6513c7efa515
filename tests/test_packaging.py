"""Packaging: our generically named packages are the ones in this repo; every command is documented."""

from __future__ import annotations

import importlib
import re
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
