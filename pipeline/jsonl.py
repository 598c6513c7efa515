"""Reading JSON Lines (watchlists, gold sets, `analyze --jsonl`) with errors that name file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.errors import DealwatchError

# Deeper than any record of ours: a line nested deeper is refused with its reason, before
# anything that walks it (validation, json.dumps) can run out of stack.
MAX_DEPTH = 64


class JsonLineError(ValueError):
    """One line is not a JSON value we take; the message is one line saying why."""


def json_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of JSON Lines text, split on "\\n" only, as the format says.

    str.splitlines() would also split on U+2028, U+2029, U+0085 and other characters that JSON
    allows inside strings, cutting valid records apart. A "\\r" before the "\\n" is dropped.
    """
    for lineno, line in enumerate(text.split("\n"), 1):
        yield lineno, line.removesuffix("\r")


def parse_json_line(line: str) -> Any:
    """The JSON value of one line; JsonLineError (one line) when it is not JSON or nests deeper
    than MAX_DEPTH."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise JsonLineError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise JsonLineError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise JsonLineError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def read_jsonl(path: Path, error: type[DealwatchError], comments: bool = False,
               text: str | None = None) -> Iterator[tuple[str, Any]]:
    """(where, value) for each non-blank line, where = "FILE:LINE"; bad input raises `error`.

    With `comments`, lines starting with // are skipped (hand-edited config files). With
    `text`, that is read as the file's content (to check a file before writing it).
    """
    try:
        content = path.read_text(encoding="utf-8") if text is None else text
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{path}: cannot read: {reason}") from None
    for lineno, line in json_lines(content):
        if not line.strip() or (comments and line.lstrip().startswith("//")):
            continue
        where = f"{path}:{lineno}"
        try:
            value = parse_json_line(line)
        except JsonLineError as exc:
            raise error(f"{where}: {exc}") from None
        yield where, value
