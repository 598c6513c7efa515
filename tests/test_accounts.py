"""Reviewers and their credentials: `dealwatch user list|disable|enable|passwd`, sessions that end
when they must, and credentials kept out of the database that Datasette is pointed at."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from schemafixtures import old_database
from starlette.testclient import TestClient
from webfixtures import PASSWORD, add_reviewers, logged_in, seed_review_queue

from pipeline.config import load_config
from pipeline.review.accounts import authenticate, hash_password
from pipeline.review.web import create_app
from pipeline.storage import MIGRATIONS, Store, StoreError
from pipeline.storage.database import accounts_path
from pipeline.storage.schema import ACCOUNTS_VERSION

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture
def web(store_location: str) -> Any:
    with Store(store_location) as store:
        seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
    return create_app(load_config(), store_location, secure_cookies=False)


def refused(client: TestClient) -> bool:
    """The next request with the client's cookie is sent to log in."""
    response = client.get("/queue")
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def file_bytes(path: Path) -> bytes:
    """A database file as anyone who copies it gets it, with its write-ahead log."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# --- user list, disable, enable, passwd ------------------------------------------------------


def test_user_list_is_a_table_with_a_header_and_json(run_cli, web) -> None:
    logged_in(web, "alice")
    assert run_cli("user", "disable", "bob").exit_code == 0
    result = run_cli("user", "list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["NAME", "CREATED", "STATUS", "LAST", "LOGIN"]
    assert [row.split()[0] for row in rows] == ["alice", "bob"]
    alice, bob = (row.split() for row in rows)
    assert alice[2] == "active" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", alice[3])
    assert bob[2:] == ["disabled", "never"]
    # the columns line up under the header
    assert {header.index("STATUS")} == {row.index(row.split()[2]) for row in rows}
    listed = json.loads(run_cli("user", "list", "--json").output)
    assert [(r["name"], r["disabled"], r["last_login_at"] is not None) for r in listed] == [
        ("alice", False, True), ("bob", True, False)]
    assert set(listed[0]) == {"id", "name", "created_at", "disabled", "last_login_at"}
    assert "scrypt" not in result.output + json.dumps(listed)


def test_user_list_without_reviewers(run_cli) -> None:
    assert run_cli("init").exit_code == 0  # user list refuses a database that is not there
    result = run_cli("user", "list")
    assert result.exit_code == 0 and "no reviewers yet" in result.output
    assert json.loads(run_cli("user", "list", "--json").output) == []


def test_disabling_a_reviewer_ends_their_sessions_at_once(run_cli, web, store_location) -> None:
    alice, alice_phone, bob = logged_in(web, "alice"), logged_in(web, "alice"), logged_in(web, "bob")
    result = run_cli("user", "disable", "alice")
    assert result.exit_code == 0
    assert result.output.strip() == "disabled reviewer alice; ended 2 sessions"
    assert refused(alice) and refused(alice_phone)
    assert not refused(bob)
    with Store(store_location) as store:
        assert store.accounts.sessions_of("alice") == 0
        assert authenticate(store, "alice", PASSWORD) is None
    # nor can she log in again
    client = TestClient(web, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    again = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    assert again.status_code == 401
    assert "already disabled" in run_cli("user", "disable", "alice").output
    # enabled, she logs in with the password she had; the old cookies stay dead
    enabled = run_cli("user", "enable", "alice")
    assert enabled.exit_code == 0 and enabled.output.strip() == "enabled reviewer alice"
    assert refused(alice)
    logged_in(web, "alice")
    assert "already active" in run_cli("user", "enable", "alice").output


def test_a_disabled_reviewer_with_a_session_left_in_the_table_is_still_refused(web, store_location) -> None:
    # an account disabled by hand in the accounts file, its sessions left behind
    alice = logged_in(web, "alice")
    with Store(store_location) as store:
        store.db.execute("UPDATE accounts.users SET disabled = 1 WHERE name = 'alice'")
        assert store.accounts.sessions_of("alice") == 1
    assert refused(alice)


def test_passwd_sets_a_new_password_and_ends_the_reviewers_sessions(run_cli, web, store_location) -> None:
    alice, bob = logged_in(web, "alice"), logged_in(web, "bob")
    result = run_cli("user", "passwd", "alice", "--password-stdin", input=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "new password for reviewer alice; ended 1 session"
    assert refused(alice) and not refused(bob)
    with Store(store_location) as store:
        assert authenticate(store, "alice", PASSWORD) is None
        assert authenticate(store, "alice", NEW_PASSWORD)
    logged_in(web, "alice", NEW_PASSWORD)
    # from a prompt, twice, not echoed
    prompted = run_cli("user", "passwd", "bob", input=f"{NEW_PASSWORD}!\n{NEW_PASSWORD}!\n")
    assert prompted.exit_code == 0, prompted.output
    assert NEW_PASSWORD not in prompted.output and "New password" in prompted.output
    assert refused(bob)
    with Store(store_location) as store:
        assert authenticate(store, "bob", NEW_PASSWORD + "!")


def test_passwd_checks_the_password_and_keeps_the_old_one_on_a_bad_one(run_cli, web, store_location) -> None:
    alice = logged_in(web, "alice")
    short = run_cli("user", "passwd", "alice", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    mismatch = run_cli("user", "passwd", "alice", input="first-password\nsecond-password\n")
    assert mismatch.exit_code != 0
    assert not refused(alice)
    with Store(store_location) as store:
        assert authenticate(store, "alice", PASSWORD)


def test_passwd_of_a_disabled_reviewer_says_they_stay_disabled(run_cli, web) -> None:
    run_cli("user", "disable", "bob")
    result = run_cli("user", "passwd", "bob", "--password-stdin", input=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0
    assert "no session was open" in result.output and "still disabled" in result.output


@pytest.mark.parametrize("args", [("disable", "zoe"), ("enable", "zoe"), ("passwd", "zoe")])
def test_an_unknown_reviewer_is_one_line_and_exit_1(run_cli, web, args) -> None:
    result = run_cli("user", *args, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: no reviewer named 'zoe' (`dealwatch user list` shows them)"]  # nothing asked


# --- credentials stay out of the main database -----------------------------------------------


def test_credentials_live_in_a_private_file_beside_the_database(db_path) -> None:
    with Store(db_path) as store:
        add_reviewers(store, "alice")
        session = store.accounts.create_session(1, 3600)
        store.accounts.record_login_failure("mallory", "203.0.113.9")
        password_hash = str(store.accounts.user("alice")["password_hash"])
    accounts = accounts_path(db_path)
    assert accounts == db_path.parent / "dealwatch.db.accounts"
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    # the main database, opened as anyone else opens it, has no such table and no such bytes
    plain = sqlite3.connect(db_path)
    tables = {row[0] for row in plain.execute("SELECT name FROM sqlite_master")}
    plain.close()
    assert not tables & {"users", "sessions", "login_failures"}
    main_file = file_bytes(db_path)
    assert password_hash.encode() not in main_file and b"mallory" not in main_file
    session_hash = hashlib.sha256(session["id"].encode()).hexdigest()
    assert session_hash.encode() not in main_file
    assert password_hash.encode() in file_bytes(accounts)


def test_a_lost_accounts_file_is_made_anew_without_reviewers(db_path) -> None:
    with Store(db_path) as store:
        add_reviewers(store, "alice")
        seed_review_queue(store)
    accounts_path(db_path).unlink()
    with Store(db_path) as store:
        assert store.accounts.users() == []
        assert store.counts()["candidates"] > 0  # the data is all there


def test_an_accounts_file_of_version_1_gets_the_flashes_table_and_keeps_its_rows(db_path) -> None:
    with Store(db_path) as store:
        add_reviewers(store, "alice")
        session = store.accounts.create_session(1, 3600)
    # the file as version 1 left it: no flashes table
    old = sqlite3.connect(accounts_path(db_path), isolation_level=None)
    old.execute("DROP TABLE flashes")
    old.execute("PRAGMA user_version = 1")
    old.close()
    with Store(db_path) as store:
        reviewer = store.accounts.reviewer("alice")
        assert reviewer is not None and reviewer.name == "alice"
        assert authenticate(store, "alice", PASSWORD) is not None
        assert store.accounts.session(session["id"]) is not None  # still logged in
        store.accounts.add_flash(session["id"], "ok", "Saved dw-000001: stage.")
        assert store.accounts.take_flashes(session["id"]) == [("ok", "Saved dw-000001: stage.")]
    new = sqlite3.connect(accounts_path(db_path))
    assert new.execute("PRAGMA user_version").fetchone()[0] == ACCOUNTS_VERSION == 2
    new.close()


def _datasette_pages(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """What Datasette (in-process, no network) answers about the databases it serves."""

    async def ask() -> dict[str, Any]:
        ds = Datasette(*args, **kwargs)
        await ds.invoke_startup()
        out: dict[str, Any] = {}
        databases = (await ds.client.get("/-/databases.json")).json()
        out["databases"] = sorted(d["name"] for d in databases)
        out["tables"] = {}
        texts = []
        for name in out["databases"]:
            page = await ds.client.get(f"/{name}.json")
            out["tables"][name] = {t["name"] for t in page.json()["tables"]}
            texts.append(page.text)
            for table in sorted(out["tables"][name]):
                texts.append((await ds.client.get(f"/{name}/{table}.json?_shape=array")).text)
            for sql in ("select * from users", "select * from sessions",
                        "select * from login_failures"):
                answer = await ds.client.get(f"/{name}.json", params={"sql": sql})
                out.setdefault("sql", []).append(answer.status_code)
                texts.append(answer.text)
        out["text"] = "\n".join(texts)
        return out

    return asyncio.run(ask())


@pytest.mark.parametrize("how", ["file", "folder"])
def test_datasette_pointed_at_the_database_shows_no_credentials(db_path, how) -> None:
    with Store(db_path) as store:
        seed_review_queue(store)
        add_reviewers(store, "alice")
        session = store.accounts.create_session(1, 3600)
        store.accounts.record_login_failure("mallory", "203.0.113.9")
        password_hash = str(store.accounts.user("alice")["password_hash"])
    # `datasette data/dealwatch.db`, or `datasette data/` (every *.db, *.sqlite, *.sqlite3 there)
    seen = (_datasette_pages([str(db_path)]) if how == "file"
            else _datasette_pages(config_dir=db_path.parent))
    assert seen["databases"] == ["dealwatch"]
    assert {"candidates", "deals", "reviews"} <= seen["tables"]["dealwatch"]
    assert not seen["tables"]["dealwatch"] & {"users", "sessions", "login_failures"}
    assert seen["sql"] == [400, 400, 400]  # "no such table"
    text = seen["text"]
    assert "Kenya" in text  # it did read the data
    assert password_hash not in text and "scrypt" not in text and "mallory" not in text
    assert hashlib.sha256(session["id"].encode()).hexdigest() not in text
    assert session["csrf_token"] not in text


# --- migration 9: a database from before moves its accounts out ------------------------------


def _database_before_migration_9(db_path: Path, token: str) -> str:
    """A database at schema 8 with a reviewer, a session and a failed login in it (as every
    database had them); the password hash."""
    password_hash = hash_password(PASSWORD)
    with old_database(db_path, 8) as old:
        old.db.execute("INSERT INTO main.users (id, name, password_hash, created_at, disabled) "
                       "VALUES (7, 'alice', ?, '2026-01-01T00:00:00Z', 0)", [password_hash])
        old.db.execute("INSERT INTO main.sessions VALUES (?, 7, 'csrf', '2026-01-01T00:00:00Z', "
                       "'2999-01-01T00:00:00Z')", [hashlib.sha256(token.encode()).hexdigest()])
        old.db.execute("INSERT INTO main.login_failures (name, address, at) VALUES "
                       "('mallory', '203.0.113.9', '2999-01-01T00:00:00Z')")
    accounts_path(db_path).unlink()  # as before this change: there was no accounts file
    return password_hash


@pytest.mark.parametrize("interrupted", [False, True])
def test_migration_9_moves_the_accounts_out_of_the_main_database(db_path, interrupted) -> None:
    token = "a-session-token-from-before"
    password_hash = _database_before_migration_9(db_path, token)
    assert password_hash.encode() in file_bytes(db_path)
    if interrupted:
        # a migration that copied the rows, then died before it dropped the tables (the two
        # files commit apart): running it again must neither fail nor double anything
        with Store(db_path, migrate=False) as half:
            half.db.execute("INSERT INTO accounts.users (id, name, password_hash, created_at) "
                            "SELECT id, name, password_hash, created_at FROM main.users")
    with Store(db_path, migrate=False) as store:
        # as SQLite is built where secure deletion is not the default (Debian's is)
        store.db.execute("PRAGMA secure_delete = OFF")
        assert store.migrate()[0] == (9, "reviewer credentials move to the accounts file")
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert not set(store.db.table_names()) & {"users", "sessions", "login_failures"}
        assert [(r.id, r.name) for r in store.accounts.users()] == [(7, "alice")]
        assert authenticate(store, "alice", PASSWORD)  # the same password
        assert store.accounts.session(token)["user_name"] == "alice"  # still logged in
        assert store.accounts.login_failures("mallory", "x", 3600) == 1
    # the hash is gone from the main file, freed pages included
    assert password_hash.encode() not in file_bytes(db_path)
    assert b"mallory" not in file_bytes(db_path)


def test_the_accounts_are_safe_in_their_file_before_the_main_file_drops_them(db_path,
                                                                              monkeypatch) -> None:
    """The two files commit apart: a migration 9 that dies after the copy leaves every reviewer
    in the accounts file and the old tables still in the main one, and the next open finishes."""
    from pipeline.storage import schema

    _database_before_migration_9(db_path, "a-token")

    def dies(db) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    steps = [(v, n, dies if v == 9 else s) for v, n, s in schema.MIGRATIONS]
    monkeypatch.setattr("pipeline.storage.database.MIGRATIONS", steps)
    with pytest.raises(StoreError), Store(db_path):
        pass
    monkeypatch.undo()
    with sqlite3.connect(accounts_path(db_path)) as accounts:
        assert accounts.execute("SELECT id, name FROM users").fetchall() == [(7, "alice")]
    with sqlite3.connect(db_path) as main:
        assert main.execute("SELECT name FROM users").fetchall() == [("alice",)]
    with Store(db_path) as store:
        assert [(r.id, r.name) for r in store.accounts.users()] == [(7, "alice")]


@pytest.mark.backends("sqlite")  # the accounts file is SQLite's
def test_a_broken_accounts_file_stops_only_what_needs_reviewers(db_path, run_cli) -> None:
    with Store(db_path):
        pass
    accounts_path(db_path).write_bytes(b"this is not a database" * 200)
    with Store(db_path) as store:  # the nightly run, the queue and exports go on
        assert store.candidates.queue() == []
        with pytest.raises(StoreError, match="accounts"):
            store.accounts.users()
    result = run_cli("user", "list")
    assert result.exit_code == 1
    assert "cannot open the reviewer accounts database" in result.output
    assert run_cli("queue").exit_code == 0
