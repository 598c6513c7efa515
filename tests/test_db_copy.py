"""`dealwatch db copy SRC DST`: a whole database moved from SQLite to PostgreSQL and back, every
row the same (checksums, the deals export), numbering carried on; a DST that holds rows, a row
PostgreSQL refuses or a missing SRC is one line, exit 1, and writes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from registryfixtures import searchable_registry, story

from models.records import Page
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.review.accounts import add_user
from pipeline.review.decisions import decide
from pipeline.review.export import registry_records, to_jsonl
from pipeline.review.imports import import_known_deals
from pipeline.review.registry import merge_deals
from pipeline.review.reports import ClaimReader, report_records
from pipeline.storage import Store
from pipeline.storage.copy import TABLES, TableCopy, copy_database

REPO = Path(__file__).resolve().parent.parent
KNOWN_DEALS = REPO / "docs" / "examples" / "known_deals.csv"
CONFIG = load_config()
CLAIM = "A think tank counted 70 surveillance deals in 41 countries worldwide since 2008."


def fill(store: Store) -> None:
    """A registry as a season of work leaves it: a crawl run and its page (a compressed body),
    articles with a MinHash signature, deals confirmed, edited and one merged into another, a
    rejection, a report from an aggregate claim, known deals imported, an export and a push, and
    a reviewer with a session, a flash message and a failed login."""
    store.runs.sync_sources(CONFIG.sources)
    source = CONFIG.sources[0].id
    run = store.runs.start_run("crawl", [source])
    store.pages.save_page(Page(url="https://example.test/a", source_id=source, status=200,
                               headers={"content-type": "text/html"},
                               body=b"<html>caf\xc3\xa9 \x00\xff</html>"), run_id=run)
    store.runs.finish_run(run, "ok", {"crawl": {"pages": 1}})
    ids = searchable_registry(store)
    article = store.candidates.candidate(ids["mou"])
    assert article is not None
    store.articles.save_signature(article.article_id, bytes(range(256)), 14, 64)
    merge_deals(store, 1, 4, "ann")  # Durban's safe city into Kenya's cloud: a mistake kept
    decide(store, ids["noise"], "reject", "bob", reason="not_a_deal", note="a phone launch")
    lead = story(store, CLAIM, site="tech-ledger.test", kind="aggregate", country=None,
                 counterpart=None, counterpart_type=None, stage="unknown",
                 deal_type="safe_city", score=0.7)
    decide(store, lead, "confirm", "ann", claims=ClaimReader(CONFIG))
    import_known_deals(store, KNOWN_DEALS, CONFIG.watchlist, "ann")
    store.registry.record_export("csv", "deals.csv", None, 3, "0" * 64)
    store.registry.record_push("https://registry.example.org/in", 2, 1, "key-2-1", "sent")
    user = add_user(store, "ann", "correct horse battery staple")
    session = store.accounts.create_session(user, 3600)
    store.accounts.add_flash(session["id"], "info", "Confirmed dw-000001 — “Kenya”")
    store.accounts.record_login_failure("bob", "127.0.0.1")


def everything(store: Store) -> dict[str, Any]:
    """What a user reads back: the deals and reports exports, the reviews, the accounts."""
    return {
        "deals": to_jsonl(registry_records(store)),
        "reports": report_records(store),
        "reviews": store.db.execute("SELECT * FROM reviews ORDER BY id").fetchall(),
        "users": store.db.execute(
            "SELECT id, name, password_hash, last_login_at FROM accounts.users").fetchall(),
        "flashes": store.db.execute("SELECT session_id, kind, text FROM accounts.flashes"
                                    ).fetchall(),
        "counts": store.counts(),
    }


def rows(result: list[TableCopy]) -> dict[str, int]:
    return {c.table: c.rows for c in result}


@pytest.fixture
def postgres(postgres_databases) -> Iterator[Callable[[], str]]:
    """New, empty (migrated) PostgreSQL databases, dropped after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(postgres_databases.new())
        return made[-1]

    yield new
    for url in made:
        postgres_databases.drop(url)


def copy(src: str | Path, dst: str | Path) -> list[TableCopy]:
    with Store(src) as source, Store(dst) as target:
        return copy_database(source.database, target.database)


def test_sqlite_to_postgresql_and_back_keeps_every_row_and_the_numbering(tmp_path, postgres):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    with Store(first) as store:
        fill(store)
        before = everything(store)
    server = postgres()

    there = copy(first, server)
    again = copy(server, back)
    other_server = postgres()

    assert there == again  # the same rows and the same SHA-256, table by table, both ways
    assert copy(server, other_server) == there  # server to server too
    counts = rows(there)
    assert counts["deals"] == 7 and counts["deal_corrections"] == 3 and counts["reports"] == 1
    assert counts["article_signatures"] == 1 and counts["pages"] == 1
    assert counts["accounts.users"] == counts["accounts.sessions"] == 1
    assert counts["accounts.flashes"] == counts["accounts.login_failures"] == 1
    assert counts["deal_numbers"] == counts["report_numbers"] == 1
    for location in (server, back, other_server):
        with Store(location) as store:
            assert everything(store) == before, location
            # the page body (bytes with NUL and 0xff) and the signature came across as bytes
            assert store.db.execute("SELECT signature FROM article_signatures").fetchone()[0] \
                == bytes(range(256))
            page = next(store.pages.pages_to_process())
            assert page.body == b"<html>caf\xc3\xa9 \x00\xff</html>"
            # the next deal and the next report get the next numbers, ids go on past the copies
            ghana = story(store, "ZTE will build Ghana's national data centre in Accra.",
                          vendor="zte", country="GH", counterpart="Ministry of Communications",
                          deal_type="data_centre", stage="signed", site="graphic.test")
            filed = decide(store, ghana, "confirm", "cy")
            deal = store.registry.deal(filed.deal_id or 0)
            assert deal is not None and (deal.deal_id, deal.id) == ("dw-000008", 8)
            claim = story(store, CLAIM.replace("70", "71"), site="other-ledger.test",
                          kind="aggregate", country=None, counterpart=None,
                          counterpart_type=None, stage="unknown", deal_type="safe_city")
            decide(store, claim, "confirm", "cy", claims=ClaimReader(CONFIG))
            assert [r.report_id for r in store.reports.reports()] == ["rp-000001", "rp-000002"]
            assert store.db.execute("SELECT MAX(id) FROM reviews").fetchone()[0] > \
                len(before["reviews"])
            user = add_user(store, "cy", "another long passphrase")
            assert user == 2


def test_full_text_search_works_on_the_copies(tmp_path, postgres):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    with Store(first) as store:
        fill(store)
        articles = store.count("articles")
    server = postgres()
    copy(first, server)
    copy(server, back)
    for location in (server, back):  # PostgreSQL's generated column, SQLite's FTS5 index
        with Store(location) as store:
            dialect = store.database.dialect
            found = store.database.execute(
                f"SELECT COUNT(*) FROM articles a WHERE {dialect.fts_match('a.id')}",
                [dialect.fts_param(["follows"])]).fetchone()[0]
            assert found == articles, location  # every text ends "more would follow."


def test_a_database_that_holds_rows_is_refused_and_left_as_it_was(tmp_path, postgres):
    first = tmp_path / "first.db"
    with Store(first) as store:
        fill(store)
    server = postgres()
    with Store(server) as store:
        story(store, "Huawei signed an MoU with Zambia's Ministry of Technology.", country="ZM")
        before = {t.name: store.db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]
                  for t in TABLES}

    with pytest.raises(Exception, match=r"holds 1 articles, 1 candidates: copy into an empty "
                                        r"database$") as refused:
        copy(first, server)
    assert "postgresql://" in str(refused.value) and "dealwatch@" in str(refused.value)
    with Store(server) as store:
        assert {t.name: store.db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]
                for t in TABLES} == before
    # and the other way: SQLite DST
    with pytest.raises(Exception, match=r"holds .*: copy into an empty database"):
        copy(server, first)


def test_a_row_postgresql_refuses_is_named_and_nothing_is_written(tmp_path, postgres):
    first = tmp_path / "first.db"
    with Store(first) as store:
        fill(store)
        article = store.db.execute("SELECT MAX(id) FROM articles").fetchone()[0]
        store.db.execute("UPDATE articles SET text = text || ? WHERE id = ?",
                         ["\x00 and then", article])
    server = postgres()

    with pytest.raises(Exception) as refused:
        copy(first, server)
    assert str(refused.value) == (
        f"cannot copy articles row id {article}: column text holds a NUL character, which "
        "PostgreSQL refuses in text; nothing was written")
    with Store(server) as store:
        assert all(n == 0 for n in store.counts().values())
        assert store.db.execute("SELECT last FROM deal_numbers").fetchone()[0] == 0


def test_a_value_of_another_type_is_named_too(tmp_path, postgres):
    first = tmp_path / "first.db"
    with Store(first) as store:
        fill(store)
        store.db.execute("UPDATE candidates SET year = 'twenty' WHERE id = 2")
    with pytest.raises(Exception, match=r"^cannot copy candidates row id 2: column year holds "
                                        r"'twenty', not an integer; nothing was written$"):
        copy(first, postgres())


# --- the command ------------------------------------------------------------------------------


def cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_the_command_copies_and_prints_each_table(tmp_path, postgres, monkeypatch):
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    first = tmp_path / "first.db"
    with Store(first) as store:
        fill(store)
    server = postgres()
    password_url = server.replace("dealwatch@", "dealwatch:s3cret@")  # the server trusts us

    done = cli("db", "copy", str(first), password_url)

    assert done.exit_code == 0, done.output
    assert "s3cret" not in done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"copied {first} to {server}:"  # no password
    assert lines[1].split() == ["table", "rows", "sha256"]
    table_rows = {line.split()[0]: line.split()[1] for line in lines[2:-1]}
    assert list(table_rows) == [t.name for t in TABLES]
    assert table_rows["deals"] == "7" and table_rows["accounts.users"] == "1"
    assert lines[-1].strip().endswith("the same on both sides (row counts and SHA-256 per table)")

    again = cli("db", "copy", str(first), server)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert again.stderr.startswith("error: postgresql://dealwatch@")
    assert again.stderr.rstrip("\n").endswith(": copy into an empty database")
    assert len(again.stderr.splitlines()) == 1


def test_a_missing_source_is_one_line_and_makes_nothing(tmp_path):
    missing, dst = tmp_path / "nowhere.db", tmp_path / "dst.db"

    done = cli("db", "copy", str(missing), str(dst))

    assert done.exit_code == 1
    assert done.stderr == f"error: {missing}: no such database to copy from\n"
    assert list(tmp_path.iterdir()) == []


def test_a_copy_that_fails_at_commit_leaves_no_new_file(tmp_path):
    first, dst = tmp_path / "first.db", tmp_path / "dst.db"
    with Store(first) as store:
        fill(store)
    conn = sqlite3.connect(first)  # foreign keys off, as an old or hand-edited database may be
    conn.execute("INSERT INTO deal_stages (deal_id, stage, recorded_at) "
                 "VALUES (999, 'signed', '2026-01-01T00:00:00Z')")
    conn.commit()
    conn.close()

    done = cli("db", "copy", str(first), str(dst))

    assert done.exit_code == 1
    assert done.stderr == (f"error: cannot copy into {dst}: FOREIGN KEY constraint failed; "
                           "nothing was written\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("dst")) == []


def test_a_database_is_not_copied_onto_itself(tmp_path):
    first = tmp_path / "first.db"
    Store(first).close()
    refused = cli("db", "copy", str(first), str(tmp_path / "." / "first.db"))
    assert refused.exit_code == 1
    assert refused.stderr == (f"error: {first} and {tmp_path / '.' / 'first.db'} are the same "
                              "database\n")


def test_sqlite_keeps_what_it_let_through_when_copied_to_sqlite(tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with Store(first) as store:
        fill(store)
        store.db.execute("UPDATE articles SET text = text || ? WHERE id = 1", ["\x00"])
    done = cli("db", "copy", str(first), str(second))
    assert done.exit_code == 0, done.output
    conn = sqlite3.connect(second)
    assert conn.execute("SELECT text FROM articles WHERE id = 1").fetchone()[0].endswith("\x00")


def test_a_difference_found_after_the_copy_names_the_table_and_writes_nothing(tmp_path,
                                                                               monkeypatch):
    import pipeline.storage.copy as copying

    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with Store(first) as store:
        fill(store)
    write = copying._write

    def lossy(db, table, cols, batch):  # a writer that loses a deal's last character of notes
        if table.name == "deals":
            notes = [c.name for c in cols].index("notes")
            batch = [tuple(v[:-1] if i == notes and v else v for i, v in enumerate(row))
                     for row in batch]
        write(db, table, cols, batch)

    monkeypatch.setattr(copying, "_write", lossy)
    with pytest.raises(copying.CopyError, match=r"^deals differs after the copy \(.*7 rows, "
                                                r".*7 rows.*\); nothing was written$"):
        copy(first, second)
    with Store(second) as store:
        assert all(n == 0 for n in store.counts().values())


@pytest.mark.parametrize(("table", "column", "value"), [
    ("articles", "title", "a\x00b"),  # psycopg refuses it before sending
    ("candidates", "year", "twenty"),  # the server refuses it, naming COPY's line
])
def test_a_row_refused_past_the_checks_is_named_too(tmp_path, postgres, monkeypatch, table,
                                                    column, value):
    import pipeline.storage.copy as copying

    first = tmp_path / "first.db"
    with Store(first) as store:
        fill(store)
        store.db.execute(f"UPDATE {table} SET {column} = ? WHERE id = 3", [value])
    server = postgres()
    monkeypatch.setattr(copying, "refusal", lambda column, value: None)  # only the driver checks

    with pytest.raises(copying.CopyError) as refused:
        copy(first, server)
    assert str(refused.value).startswith(f"cannot copy {table} row id 3:"), refused.value
    if table == "candidates":
        assert str(refused.value).startswith("cannot copy candidates row id 3: column year ")
    assert str(refused.value).endswith("; nothing was written")
    with Store(server) as store:
        assert all(n == 0 for n in store.counts().values())


def test_a_run_at_work_on_the_source_keeps_the_copy_from_starting(tmp_path):
    from pipeline.storage.lock import RunLock

    first, second = tmp_path / "first.db", tmp_path / "second.db"
    Store(first).close()
    with RunLock(first, "run"):
        refused = cli("db", "copy", str(first), str(second))
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: another dealwatch run is using first.db: "
                                     "`dealwatch run` (pid ")
    assert refused.stderr.endswith("; not starting `dealwatch db copy`\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("second")] == []


def test_a_run_at_work_on_a_server_keeps_the_copy_from_starting(tmp_path, postgres):
    from pipeline.storage.lock import run_lock

    first, server = tmp_path / "first.db", postgres()
    with Store(first) as store:
        fill(store)
    with run_lock(server, "run"):
        refused = cli("db", "copy", str(first), server)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: another dealwatch run is using {server}: "
                                     "`dealwatch run` (pid ")
    assert refused.stderr.endswith("; not starting `dealwatch db copy`\n")
    with Store(server) as store:
        assert all(n == 0 for n in store.counts().values())
    assert cli("db", "copy", server, server).stderr == (
        f"error: {server} and {server} are the same database\n")
