"""A whole database copied into an empty one, SQLite or PostgreSQL either way, and verified.

`copy_database(src, dst)` is `dealwatch db copy` (docs/scaling.md, "Moving a database"). Every table
in dependency order, read from SRC in key order by keyset, 1,000 rows a batch, inside one snapshot;
written into DST in one transaction with its foreign keys deferred (the schema has cycles), with
`COPY … FROM STDIN` on PostgreSQL and `executemany` on SQLite. Ids are copied as they are; the
PostgreSQL identities are then set past the largest id, and the numbering tables come across as
rows, so no number or id is given twice. Before the transaction commits, each table is read back
from DST and its row count and SHA-256 compared with SRC's: a difference, like a row PostgreSQL
refuses, rolls all of it back.

Not copied: `schema_migrations` (DST has its own, at the same version), SQLite's FTS5 tables
(`articles_fts*`, which its triggers fill as the articles go in) and PostgreSQL's generated
`articles.search`; `deal_sources.seq` on PostgreSQL numbers itself in the order the rows come.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.storage.database import Database, StoreError, is_driver_error

if TYPE_CHECKING:
    from pipeline.storage.postgres import PostgresDatabase


@dataclass(frozen=True)
class Table:
    name: str  # as SQL names it: "deals", "accounts.users"
    key: tuple[str, ...] = ("id",)  # the primary key, which names a row in a message
    by_insertion: bool = False  # read in insertion order (SQLite's rowid, PostgreSQL's seq)
    numbering: bool = False  # a one-row counter table: DST's own row is replaced by SRC's


# Dependency order (foreign keys are deferred anyway: pages <-> articles, candidates <-> reports).
TABLES = (
    Table("sources"), Table("runs"), Table("pages"), Table("articles"),
    Table("article_signatures", ("article_id",)), Table("entities"), Table("deals"),
    Table("reports"), Table("candidates"), Table("reviews"),
    Table("deal_sources", ("deal_id", "candidate_id"), by_insertion=True),
    Table("deal_stages"), Table("deal_corrections"),
    Table("deal_pushes", ("endpoint", "deal_id", "version")),
    Table("deal_numbers", ("last",), numbering=True),
    Table("report_numbers", ("last",), numbering=True),
    Table("exports"), Table("rankers"),
    Table("accounts.users"), Table("accounts.sessions"), Table("accounts.login_failures"),
    Table("accounts.flashes"),
)
BATCH_ROWS = 1_000
SHOWN = 4  # tables a refusal names


class CopyError(StoreError):
    """The copy cannot be made (DST not empty, a row DST refuses, a difference after it); DST is
    left as it was."""


@dataclass(frozen=True)
class TableCopy:
    """One table as copied: its rows and the SHA-256 over them, the same on both sides."""

    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL's data_type ("text", "bigint", "double precision", "bytea"); SQLite's
    identity: bool = False  # a PostgreSQL identity the copy sets past its largest value


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema, name


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def columns(db: Database, table: str) -> list[Column]:
    """The columns a copy writes, in the table's order: not PostgreSQL's generated ones
    (`articles.search`, `deal_sources.seq`)."""
    schema, name = _split(table)
    if db.dialect.postgres:
        rows = db.execute(
            "SELECT column_name, data_type, is_identity FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND is_generated = 'NEVER' "
            "AND identity_generation IS DISTINCT FROM 'ALWAYS' ORDER BY ordinal_position",
            [schema or "public", name]).fetchall()
        return [Column(n, t, identity == "YES") for n, t, identity in rows]
    rows = db.execute("SELECT name, type FROM pragma_table_info(?, ?) ORDER BY cid",
                      [name, schema or "main"]).fetchall()
    return [Column(n, t) for n, t in rows]


def _order(db: Database, table: Table) -> list[str]:
    return [db.dialect.insert_order("t")] if table.by_insertion else [f't."{k}"' for k in table.key]


def read_rows(db: Database, table: Table, names: Sequence[str], batch: int = BATCH_ROWS
              ) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of a table in key order, in batches read by keyset (never an OFFSET)."""
    order = _order(db, table)
    picked = ", ".join(f't."{name}"' for name in names)
    select = f"SELECT {', '.join(order)}, {picked} FROM {table.name} t"
    after: list[Any] | None = None
    while True:
        where = f" WHERE ({', '.join(order)}) > ({', '.join('?' * len(order))})" if after else ""
        rows = db.execute(f"{select}{where} ORDER BY {', '.join(order)} LIMIT {int(batch)}",
                          after or []).fetchall()
        if not rows:
            return
        yield [tuple(row[len(order):]) for row in rows]
        if len(rows) < batch:
            return
        after = list(rows[-1][:len(order)])


def _value(value: Any) -> Any:
    """A value as the checksum reads it: floats by repr, bytes as hex, text (JSON too) as is."""
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["b", bytes(value).hex()]
    return value


def add_rows(digest: Any, rows: Sequence[Sequence[Any]]) -> None:
    for row in rows:
        digest.update(json.dumps([_value(v) for v in row]).encode("ascii"))
        digest.update(b"\n")


def _name(table: Table, names: Sequence[str], row: Sequence[Any]) -> str:
    """The row as a message names it: `id 12`, `deal_id 3, candidate_id 7`."""
    values = dict(zip(names, row, strict=True))
    return ", ".join(f"{k} {values[k]!r}" if isinstance(values[k], str) else f"{k} {values[k]}"
                     for k in table.key)


def refusal(column: Column, value: Any) -> str | None:
    """Why PostgreSQL would refuse this value in this column (SQLite lets a column hold any type);
    None when it takes it."""
    if value is None:
        return None
    kind = column.type
    if kind == "text":
        if not isinstance(value, str):
            return f"holds {type(value).__name__}, not text"
        if "\x00" in value:
            return "holds a NUL character, which PostgreSQL refuses in text"
    elif kind == "bigint" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"holds {value!r}, not an integer"
    elif kind == "double precision" and not isinstance(value, int | float):
        return f"holds {value!r}, not a number"
    elif kind == "bytea" and not isinstance(value, bytes):
        return f"holds {type(value).__name__}, not bytes"
    return None


def _check_rows(table: Table, cols: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    names = [c.name for c in cols]
    for row in rows:
        for column, value in zip(cols, row, strict=True):
            problem = refusal(column, value)
            if problem:
                raise CopyError(f"cannot copy {table.name} row {_name(table, names, row)}: "
                                f"column {column.name} {problem}; nothing was written")


_COPY_LINE = re.compile(r"\bline (\d+)(?:, column (\w+))?")


def _write_postgres(db: PostgresDatabase, table: Table, cols: Sequence[Column],
                    rows: Sequence[Sequence[Any]]) -> None:
    import psycopg

    _check_rows(table, cols, rows)
    names = [c.name for c in cols]
    at = 0  # the row being sent: psycopg refuses some values itself (a NUL in text)
    try:
        with db.conn.cursor() as cursor, cursor.copy(
                f"COPY {table.name} ({_quoted(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                at += 1
    except psycopg.Error as exc:
        # the server says which line of this batch it refused: "COPY deals, line 3, column …"
        line = _COPY_LINE.search(exc.diag.context or "")
        if line:
            at = int(line.group(1)) - 1
        which = f" row {_name(table, names, rows[at])}" if 0 <= at < len(rows) else ""
        named = exc.diag.column_name or (line.group(2) if line else None)
        column = f" column {named}" if named else ""
        problem = exc.diag.message_primary or str(exc)
        raise CopyError(f"cannot copy {table.name}{which}:{column} {problem}; "
                        "nothing was written") from None


def _write(db: Database, table: Table, cols: Sequence[Column], rows: Sequence[Sequence[Any]]
           ) -> None:
    if db.dialect.postgres:
        from pipeline.storage.postgres import PostgresDatabase  # psycopg only when needed

        assert isinstance(db, PostgresDatabase)
        _write_postgres(db, table, cols, rows)
    else:
        names = [c.name for c in cols]
        db.executemany(f"INSERT INTO {table.name} ({_quoted(names)}) "
                       f"VALUES ({', '.join('?' * len(names))})", rows)


def held_rows(db: Database) -> dict[str, int]:
    """The rows of each copied table that holds any, numbering tables aside."""
    counts = {t.name: int(db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0])
              for t in TABLES if not t.numbering}
    return {name: n for name, n in counts.items() if n}


def _same_columns(src: Database, dst: Database, table: Table) -> list[Column]:
    """DST's columns of a table, which SRC must have too (both are at the same version)."""
    wanted, found = columns(dst, table.name), {c.name for c in columns(src, table.name)}
    if {c.name for c in wanted} != found:
        raise CopyError(f"{table.name} has other columns in {src.location} than in "
                        f"{dst.location}; nothing was written")
    return wanted


def _digest(db: Database, table: Table, names: Sequence[str]) -> TableCopy:
    digest, rows = hashlib.sha256(), 0
    for batch in read_rows(db, table, names):
        add_rows(digest, batch)
        rows += len(batch)
    return TableCopy(table.name, rows, digest.hexdigest())


def _set_identities(db: Database, table: Table, cols: Sequence[Column]) -> None:
    """Set each PostgreSQL identity of the table past the largest id copied into it."""
    for column in cols:
        if column.identity:
            db.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), MAX(\"{column.name}\")) "
                       f"FROM {table.name} HAVING MAX(\"{column.name}\") IS NOT NULL",
                       [table.name, column.name])


def copy_database(src: Database, dst: Database, on_rows: Callable[[int], None] | None = None
                  ) -> list[TableCopy]:
    """Copy every table of SRC into DST, which must hold no rows; verified table by table before
    DST commits. CopyError (nothing written) when DST holds rows, refuses one, or differs."""
    held = held_rows(dst)
    if held:
        listed = ", ".join(f"{n} {name}" for name, n in list(held.items())[:SHOWN])
        if len(held) > SHOWN:
            listed += f" and rows in {len(held) - SHOWN} more tables"
        raise CopyError(f"{dst.location} holds {listed}: copy into an empty database")
    plan = [(table, _same_columns(src, dst, table)) for table in TABLES]
    try:
        with src.snapshot(), dst.transaction():
            return _copy_tables(src, dst, plan, on_rows)
    except StoreError:
        raise
    except Exception as exc:
        problem = _driver_problem(exc)
        if problem is None:
            raise
        # a deferred foreign key checked at COMMIT, a unique key on SQLite, …
        raise CopyError(f"cannot copy into {dst.location}: {problem}; nothing was written"
                        ) from None


def _driver_problem(exc: Exception) -> str | None:
    """What the database driver said, in one line; None for an error that is not the driver's."""
    if not is_driver_error(exc):
        return None
    diag = getattr(exc, "diag", None)  # psycopg's; sqlite3 says all of it in its message
    if diag is None:
        return str(exc)
    return " ".join(part for part in (diag.message_primary, diag.message_detail) if part) or str(exc)


def _copy_tables(src: Database, dst: Database, plan: Sequence[tuple[Table, list[Column]]],
                 on_rows: Callable[[int], None] | None) -> list[TableCopy]:
    dst.execute("SET CONSTRAINTS ALL DEFERRED" if dst.dialect.postgres
                else "PRAGMA defer_foreign_keys = ON")
    copied: list[TableCopy] = []
    for table, cols in plan:
        names = [c.name for c in cols]
        if table.numbering:
            dst.execute(f"DELETE FROM {table.name}")
        digest, rows = hashlib.sha256(), 0
        for batch in read_rows(src, table, names):
            _write(dst, table, cols, batch)
            add_rows(digest, batch)
            rows += len(batch)
            if on_rows:
                on_rows(len(batch))
        if dst.dialect.postgres:
            _set_identities(dst, table, cols)
        copied.append(TableCopy(table.name, rows, digest.hexdigest()))
    for (table, cols), made in zip(plan, copied, strict=True):
        found = _digest(dst, table, [c.name for c in cols])
        if found != made:
            raise CopyError(
                f"{table.name} differs after the copy ({src.location}: {made.rows} rows, "
                f"SHA-256 {made.sha256[:12]}; {dst.location}: {found.rows} rows, SHA-256 "
                f"{found.sha256[:12]}); nothing was written")
    return copied


def source_rows(db: Database) -> int:
    """How many rows a copy of this database reads, for a progress bar."""
    return sum(int(db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]) for t in TABLES)
