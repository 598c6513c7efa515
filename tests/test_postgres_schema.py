"""The PostgreSQL schema against SQLite's: the same tables, columns and indexes (the listed
differences aside); the audits append-only there too; a reader role that sees the data and not
the accounts; every migration after the baseline with a PostgreSQL step; and two processes that
migrate one empty database at once leaving the schema there once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import servers

from pipeline.storage import MIGRATIONS, Store
from pipeline.storage.postgres import BASELINE_VERSION, MIGRATE_LOCK, POSTGRES_STEPS

REPO = Path(__file__).resolve().parent.parent

# What PostgreSQL has and SQLite has not, on purpose: the article search is a generated tsvector
# column with its GIN index (SQLite: the articles_fts FTS5 tables, left out below), and
# deal_sources keeps its insertion order in `seq` (SQLite: the rowid).
POSTGRES_ONLY_COLUMNS = {("public.articles", "search"), ("public.deal_sources", "seq")}
POSTGRES_ONLY_INDEXES = {("public.articles", "articles_search")}

# A table: {column: (not null, default)} and the names of the indexes made by CREATE INDEX.
Table = tuple[dict[str, tuple[bool, str | None]], set[str]]


def _default(text: str | None) -> str | None:
    """A column default as both engines would write it: PostgreSQL's casts dropped
    ("'[]'::text" is SQLite's "'[]'")."""
    return None if text is None else re.sub(r"::[a-z ]+$", "", text)


def sqlite_tables(path: Path) -> dict[str, Table]:
    """Every table of a SQLite database and of its accounts file (as schema `accounts`), but the
    full-text index's."""
    tables: dict[str, Table] = {}
    with Store(path) as store:
        db = store.database
        for schema, name in (("main", "public"), ("accounts", "accounts")):
            for (table,) in db.execute(
                    f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'articles_fts%' AND name NOT LIKE 'sqlite_%'").fetchall():
                # a primary key's column is NOT NULL in PostgreSQL; SQLite's table_info says 0
                columns = {row[1]: (bool(row[3]) or row[5] > 0, _default(row[4]))
                           for row in db.execute(f"PRAGMA {schema}.table_info({table})")}
                # origin 'c': made by CREATE INDEX (not a primary key's or a UNIQUE constraint's)
                indexes = {row[1] for row in db.execute(f"PRAGMA {schema}.index_list({table})")
                           if row[3] == "c"}
                tables[f"{name}.{table}"] = (columns, indexes)
    return tables


def postgres_tables(url: str) -> dict[str, Table]:
    """Every table of the public and accounts schemas of a PostgreSQL database."""
    tables: dict[str, Table] = {}
    with psycopg.connect(url) as conn:
        for schema, table in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('public', 'accounts') AND table_type = 'BASE TABLE'"):
            columns = {name: (nullable == "NO", _default(default)) for name, nullable, default
                       in conn.execute(
                           "SELECT column_name, is_nullable, column_default "
                           "FROM information_schema.columns "
                           "WHERE table_schema = %s AND table_name = %s", [schema, table])}
            # not the indexes behind a primary key or a UNIQUE constraint
            indexes = {name for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes i WHERE schemaname = %s AND tablename = %s "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = "
                "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
                [schema, table])}
            tables[f"{schema}.{table}"] = (columns, indexes)
    return tables


def test_both_backends_have_the_same_schema(db_path, postgres_databases) -> None:
    url = postgres_databases.new()
    try:
        on_postgres = postgres_tables(url)
    finally:
        postgres_databases.drop(url)
    on_sqlite = sqlite_tables(db_path)
    assert sorted(on_postgres) == sorted(on_sqlite)
    assert "public.candidates" in on_sqlite and "accounts.users" in on_sqlite
    columns_only_here = set()
    for table in on_sqlite:
        pg_columns, pg_indexes = on_postgres[table]
        lite_columns, lite_indexes = on_sqlite[table]
        columns_only_here |= {(table, c) for c in set(pg_columns) - set(lite_columns)}
        assert set(lite_columns) <= set(pg_columns), table
        for column in lite_columns:
            assert pg_columns[column] == lite_columns[column], (table, column)
        assert pg_indexes - lite_indexes == {i for t, i in POSTGRES_ONLY_INDEXES if t == table}
        assert lite_indexes <= pg_indexes, table
    assert columns_only_here == POSTGRES_ONLY_COLUMNS


def _audit_rows(url: str) -> None:
    """One review and one registry correction."""
    with Store(url) as store:
        db = store.database
        now = "2026-01-01T00:00:00Z"
        db.execute("INSERT INTO articles (id, canonical_url, url, text, text_hash, extracted_at) "
                   "VALUES (1, 'https://news.test/1', 'https://news.test/1', 'Text.', 'h1', ?)",
                   [now])
        db.execute("INSERT INTO candidates (id, article_id, key, kind, score, sentence, "
                   "created_at, updated_at) VALUES (1, 1, 'k1', 'deal', 0.5, 'Text.', ?, ?)",
                   [now, now])
        db.execute("INSERT INTO reviews (candidate_id, reviewer, decided_at, decision) "
                   "VALUES (1, 'ana', ?, 'confirm')", [now])
        db.execute("INSERT INTO deal_corrections (reviewer, corrected_at, action, deal_id, batch) "
                   "VALUES ('ana', ?, 'edit', 1, 'b1')", [now])


@pytest.mark.parametrize("table", ["reviews", "deal_corrections"])
@pytest.mark.parametrize("change", ["UPDATE {table} SET reviewer = 'bob'", "DELETE FROM {table}",
                                    "TRUNCATE {table}"])
def test_the_audits_are_append_only_on_postgresql(postgres_databases, table, change) -> None:
    url = postgres_databases.new()
    try:
        _audit_rows(url)
        with psycopg.connect(url, autocommit=True) as conn:
            with pytest.raises(psycopg.Error, match=f"{table} is an append-only audit table"):
                conn.execute(change.format(table=table))
            assert conn.execute(f"SELECT reviewer FROM {table}").fetchall() == [("ana",)]
    finally:
        postgres_databases.drop(url)


def _as_superuser(url: str, database: str) -> str:
    """The test server's superuser (trust on loopback), on one database: roles are made by it."""
    return re.sub(r"//[^@/]+@", f"//{servers.POSTGRES_USER}@",
                  servers.database_url(url, database))


def test_a_reader_role_reads_the_data_and_not_the_accounts(postgres_databases) -> None:
    url = postgres_databases.new()
    reader = f"reader_{os.getpid()}"
    try:
        with Store(url) as store:
            store.database.execute(
                "INSERT INTO deals (deal_id, vendor, created_at, updated_at) "
                "VALUES ('dw-000001', 'huawei', '2026-01-01', '2026-01-01')")
            store.database.execute(
                "INSERT INTO accounts.users (name, password_hash, created_at) "
                "VALUES ('ana', 'hash', '2026-01-01')")
        with psycopg.connect(_as_superuser(url, "postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {reader} LOGIN")
        # what docs/scaling.md tells an operator to grant, done by the owner of the tables
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f"GRANT USAGE ON SCHEMA public TO {reader}")
            owner.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
            owner.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES "
                          f"TO {reader}")
        as_reader = re.sub(r"//[^@/]+@", f"//{reader}@", url)
        with psycopg.connect(as_reader, autocommit=True) as conn:
            assert conn.execute("SELECT deal_id, vendor FROM deals").fetchall() == [
                ("dw-000001", "huawei")]
            for table in ("users", "sessions", "login_failures", "flashes"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                    conn.execute(f"SELECT * FROM accounts.{table}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute("UPDATE deals SET vendor = 'zte'")
    finally:
        postgres_databases.drop(url)
        with psycopg.connect(_as_superuser(url, "postgres"), autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {reader}")


def test_every_migration_after_the_baseline_has_a_postgresql_step() -> None:
    versions = [version for version, _name, _step in MIGRATIONS]
    assert BASELINE_VERSION in versions
    missing = [v for v in versions if v > BASELINE_VERSION and v not in POSTGRES_STEPS]
    assert not missing, (f"migrations {missing} have no PostgreSQL step: add one to "
                         "POSTGRES_STEPS in pipeline/storage/postgres.py")
    assert set(POSTGRES_STEPS) <= set(versions), "a PostgreSQL step for no migration"
    assert all(v > BASELINE_VERSION for v in POSTGRES_STEPS), "the baseline has these already"


def _waiting_for_the_migration_lock(conn: psycopg.Connection[Any]) -> int:
    # an advisory lock on one bigint key shows as classid (high half), objid (low half)
    return int(conn.execute(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid = %s AND objid = %s AND objsubid = 1",
        [MIGRATE_LOCK >> 32, MIGRATE_LOCK & 0xFFFF_FFFF]).fetchone()[0])


def test_two_processes_migrating_one_empty_database_make_the_schema_once(postgres_url) -> None:
    name = f"race_{os.getpid()}"
    url = servers.database_url(postgres_url, name)
    with psycopg.connect(servers.database_url(postgres_url, "postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        opener = "import sys; from pipeline.storage import Store; Store(sys.argv[1]).close()"
        # Hold the migration lock, so that both processes are at the migration at once when
        # it is let go; then each must see what the other did.
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
            workers = [subprocess.Popen([sys.executable, "-c", opener, url], cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                       for _ in range(2)]
            deadline = time.monotonic() + 60
            while _waiting_for_the_migration_lock(holder) < 2:
                assert all(w.poll() is None for w in workers), "a process ended before the lock"
                assert time.monotonic() < deadline, "the processes never reached the lock"
                time.sleep(0.05)
            holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])
        outputs = [w.communicate(timeout=120)[0].decode() for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outputs
        with psycopg.connect(url) as conn:
            versions = [v for (v,) in conn.execute(
                "SELECT version FROM schema_migrations ORDER BY version")]
            assert versions == [v for v, _name, _step in MIGRATIONS]
            assert conn.execute("SELECT COUNT(*) FROM deal_numbers").fetchone()[0] == 1
    finally:
        with psycopg.connect(servers.database_url(postgres_url, "postgres"),
                             autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(("argv", "command"), [
    (["/usr/bin/dealwatch", "serve", "--workers", "2"], "dealwatch serve"),
    (["dealwatch", "--db=postgresql://alice:hunter2@db/deals", "review", "queue"],
     "dealwatch review queue"),
    (["dealwatch", "--db", "postgresql://alice:hunter2@db/deals", "process", "--worker"],
     "dealwatch process"),
])
def test_a_connection_names_its_command_without_options(postgres_url: str, monkeypatch: Any,
                                                        argv: list[str], command: str) -> None:
    """pg_stat_activity shows `dealwatch serve pid N`: the command's words, never the program
    twice, an option or its value (a URL's password)."""
    monkeypatch.setattr(sys, "argv", argv)
    with Store(postgres_url) as store:
        name = store.database.execute("SELECT current_setting('application_name')").fetchone()[0]
    assert name == f"{command} pid {os.getpid()}"
