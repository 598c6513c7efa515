"""Reading JSON Lines files (watchlists, gold sets) with errors that name file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.errors import DealwatchError


def read_jsonl(path: Path, error: type[DealwatchError], comments: bool = False,
               text: str | None = None) -> Iterator[tuple[str, Any]]:
    """(where, value) for each non-blank line, where = "FILE:LINE"; bad input raises `error`.

    With `comments`, lines starting with // are skipped (hand-edited config files). With
    `text`, that is read as the file's content (to check a file before writing it).
    """
    try:
        lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{path}: cannot read: {reason}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or (comments and line.lstrip().startswith("//")):
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON: {exc.msg}") from None
