"""docs/cli.md is every command's `--help`, generated: the reference and the CLI cannot drift apart.

After changing a command, its options or its help text, run `make golden` (pytest
--update-goldens) and commit docs/cli.md with the change. The help is rendered as a terminal of 80
columns shows it (Click wraps at 78), so the file does not depend on the machine.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import main

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = 78

HEADER = """\
# Command-line reference

<!-- Generated from each command's --help by `make golden` (tests/test_cli_reference.py checks
     it): edit the help in pipeline/cli/, not this file. -->

Every `dealwatch` command's `--help`, as a terminal 80 columns wide shows it. The
[README](../README.md#command-line) says what the commands are for and how they fit together.
"""


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below `command`, depth first, each group before its subcommands."""
    paths = [path]
    if isinstance(command, click.Group):
        with click.Context(command, info_name="dealwatch") as ctx:
            names = command.list_commands(ctx)
        for name in names:
            sub = command.commands[name]
            if not sub.hidden:
                paths += command_paths(sub, (*path, name))
    return paths


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="dealwatch", terminal_width=WIDTH)
    assert result.exit_code == 0, f"`dealwatch {' '.join(path)} --help` failed:\n{result.output}"
    return result.output


def render() -> str:
    sections = [HEADER]
    for path in command_paths(main):
        title = " ".join(("dealwatch", *path))
        sections.append(f"## `{title}`\n\n```\n{help_text(path).rstrip()}\n```\n")
    return "\n".join(sections)


def test_cli_reference_is_every_commands_help(update_goldens: bool) -> None:
    expected = render()
    if update_goldens:
        REFERENCE.write_text(expected, encoding="utf-8")
    if not REFERENCE.exists():
        pytest.fail(f"{REFERENCE} is missing: run `make golden` to write it", pytrace=False)
    stored = REFERENCE.read_text(encoding="utf-8")
    if stored != expected:
        diff = difflib.unified_diff(stored.splitlines(), expected.splitlines(),
                                    "docs/cli.md", "--help", lineterm="", n=1)
        pytest.fail(f"{REFERENCE} differs from the commands' --help: run `make golden` and commit "
                    "the difference with the change to the CLI\n" + "\n".join(list(diff)[:40]),
                    pytrace=False)


def test_the_reference_walks_into_groups() -> None:
    paths = command_paths(main)
    assert ("review", "edit") in paths and ("watchlist", "add") in paths  # subcommands too
    assert len(paths) == len(set(paths))
