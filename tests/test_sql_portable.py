"""Repository SQL is one text for SQLite and PostgreSQL (docs/scaling.md, "PostgreSQL backend").

PostgresDatabase rewrites every `?` of a statement to psycopg's `%s` and every `%` to `%%`
(storage.postgres.translate) without reading the SQL: a `?` inside a string literal or a comment
would become a parameter there (and shift every parameter after it), and SQLite would read it
as text. So the SQL in `pipeline/` keeps `?` and `%` out of its literals and comments (a LIKE
pattern is a parameter), and the constructs only one engine has stay in the dialect
(storage.dialect) or in the code of one backend.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "pipeline"

# A string that holds SQL: one of these keywords as a word, in capitals as the code writes them.
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|JOIN|VALUES|RETURNING|"
                       r"CREATE|ALTER|ON CONFLICT|ORDER BY|GROUP BY)\b")
HOLE = "\x00"  # where an f-string puts a value

# Only SQLite has these (or only PostgreSQL): each goes through a dialect fragment instead.
ONE_ENGINE = re.compile(r"\b(json_each|json_extract|OR IGNORE|OR REPLACE|rowid|GROUP_CONCAT|"
                        r"NOCASE|ILIKE|MATCH|jsonb\w*|plainto_tsquery)\b")
# Where they belong: the dialect, SQLite's migrations, the PostgreSQL backend, and the copy
# (which names each engine's catalog).
ONE_ENGINE_FILES = {"storage/dialect.py", "storage/schema.py", "storage/postgres.py",
                    "storage/copy.py"}


def sql_strings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each string in a module that reads as SQL; an f-string's values as HOLE."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else HOLE
                           for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if SQL_WORDS.search(text):
            yield node.lineno, text


def quoted_parts(sql: str) -> Iterator[str]:
    """The string literals ('…', '' inside) and comments (-- …, /* … */) of a SQL text."""
    at = 0
    while at < len(sql):
        char = sql[at]
        if char == "'":
            end = at + 1
            while True:
                end = sql.find("'", end)
                if end == -1:
                    yield sql[at:]
                    return
                if sql.startswith("''", end):
                    end += 2
                    continue
                break
            yield sql[at:end + 1]
            at = end + 1
        elif char == '"':  # a quoted name: skipped whole
            end = sql.find('"', at + 1)
            at = len(sql) if end == -1 else end + 1
        elif sql.startswith("--", at):
            end = sql.find("\n", at)
            end = len(sql) if end == -1 else end
            yield sql[at:end]
            at = end
        elif sql.startswith("/*", at):
            end = sql.find("*/", at)
            end = len(sql) if end == -1 else end + 2
            yield sql[at:end]
            at = end
        else:
            at += 1


def literal_marks(sql: str) -> list[str]:
    """The literals and comments of a SQL text that hold a `?` or a `%`."""
    return [part for part in quoted_parts(sql) if "?" in part or "%" in part]


@pytest.mark.parametrize(("sql", "found"), [
    ("SELECT id FROM t WHERE name = ?", []),
    ("SELECT id FROM t WHERE name = 'what?' AND id = ?", ["'what?'"]),
    ("SELECT id FROM t WHERE name LIKE 'a%' AND id = ?", ["'a%'"]),
    ("SELECT 'it''s?' FROM t", ["'it''s?'"]),
    ('SELECT "odd?name" FROM t WHERE id = ?', []),
    ("SELECT id FROM t -- why?\nWHERE id = ?", ["-- why?"]),
    ("SELECT id /* 50% */ FROM t", ["/* 50% */"]),
])
def test_the_lint_finds_marks_in_literals_and_comments(sql: str, found: list[str]) -> None:
    assert literal_marks(sql) == found


def modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_no_sql_literal_holds_a_parameter_mark_or_a_percent() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {part!r}"
             for path in modules() for line, sql in sql_strings(path)
             for part in literal_marks(sql)]
    assert not found, "`?` or `%` inside a SQL literal or comment (make it a parameter):\n" + \
        "\n".join(found)


def test_sql_of_one_engine_stays_in_the_dialect() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {match.group(0)}"
             for path in modules() if str(path.relative_to(ROOT)) not in ONE_ENGINE_FILES
             for line, sql in sql_strings(path) for match in ONE_ENGINE.finditer(sql)]
    assert not found, "SQL only one engine runs, outside storage.dialect:\n" + "\n".join(found)


def test_the_lint_reads_the_repositories() -> None:
    """The lint sees the SQL it guards (a change to how it finds SQL cannot silence it)."""
    seen = {str(path.relative_to(ROOT)) for path in modules() if any(sql_strings(path))}
    assert {"storage/articles.py", "storage/registry.py", "storage/queue.py",
            "storage/accounts.py", "storage/candidates.py"} <= seen
