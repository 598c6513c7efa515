"""The database as a whole: db copy (a whole database into an empty one, SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.common import State, database_problem, fail, pass_state, progress_bar, table_lines
from pipeline.storage import Store
from pipeline.storage.copy import copy_database, source_rows
from pipeline.storage.database import shown_location
from pipeline.storage.lock import run_lock
from pipeline.urls import is_database_url


@click.group("db")
def db_group() -> None:
    """The database as a whole: move it between SQLite and PostgreSQL.

    \b
    Example:
        dealwatch db copy data/dealwatch.db postgresql://dealwatch@db.internal/dealwatch
    """


def _files(path: Path) -> list[Path]:
    """The files a SQLite database may make beside it: journal, accounts, run lock."""
    return [Path(f"{path}{end}") for end in ("", "-wal", "-shm", ".accounts", ".accounts-wal",
                                              ".accounts-shm", ".lock")]


def _same(src: str, dst: str) -> bool:
    if is_database_url(src) or is_database_url(dst):
        return src == dst
    return Path(src).resolve() == Path(dst).resolve()


@db_group.command("copy")
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@pass_state
def copy(state: State, src: str, dst: str) -> None:
    """Copy the whole database SRC into DST, which must be empty: a SQLite file or a
    postgresql:// URL on either side (SQLite to PostgreSQL, or back). Both are migrated to this
    version first; every table, reviewers' accounts too, is copied in one transaction and checked
    (row counts and a SHA-256 per table) before it commits, so a copy that fails writes nothing.
    Prints each table's rows and checksum. --db is not used.

    \b
    Example:
        dealwatch db copy data/dealwatch.db postgresql://dealwatch@db.internal/dealwatch
        dealwatch db copy postgresql://dealwatch@db.internal/dealwatch backup.db
    """
    for location, may_create in ((src, False), (dst, True)):
        if is_database_url(location):
            continue
        path = Path(location)
        if not may_create and not path.exists():
            fail(f"{path}: no such database to copy from")
        problem = database_problem(path, may_create)
        if problem:
            fail(problem)
    if _same(src, dst):
        fail(f"{shown_location(src)} and {shown_location(dst)} are the same database")
    made = [] if is_database_url(dst) else [p for p in _files(Path(dst)) if not p.exists()]
    busy_ms = state.config.settings.database.busy_timeout_ms
    try:
        # both run locks, exclusive: no run writes either side while the copy runs
        with run_lock(src, "db copy"), run_lock(dst, "db copy"), Store(src, busy_ms) as source, \
                Store(dst, busy_ms) as target, \
                progress_bar(source_rows(source.database), "copying") as advance:
            copied = copy_database(source.database, target.database, advance)
    except BaseException:
        for path in made:  # a DST file this copy made and could not fill goes again
            path.unlink(missing_ok=True)
        raise
    click.echo(f"copied {shown_location(src)} to {shown_location(dst)}:")
    for line in table_lines(("table", "rows", "sha256"),
                            ((c.table, f"{c.rows:,}", c.sha256[:16]) for c in copied), right={1}):
        click.echo(f"  {line}")
    click.echo(f"  {sum(c.rows for c in copied):,} rows in {len(copied)} tables, the same on both "
               "sides (row counts and SHA-256 per table)")


COMMANDS = (db_group,)
