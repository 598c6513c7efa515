"""Flash messages ("#5 rejected … Press u to undo.") with several server processes behind one
address: the message a POST leaves is shown once on the next page, whichever process serves it,
only to the session it was left for, and goes with that session."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient
from webfixtures import add_reviewers, logged_in, seed_review_queue

from pipeline.config import load_config
from pipeline.review.web import REASON_LABELS, create_app
from pipeline.storage import Store
from pipeline.storage.database import accounts_path

FLASH = re.compile(r'<p class="flash flash-(\w+)">(.*?)</p>', re.S)


@pytest.fixture
def web(db_path: Path) -> SimpleNamespace:
    """Two server processes' apps over one database, as behind one address."""
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
    return SimpleNamespace(first=create_app(load_config(), db_path, secure_cookies=False),
                           second=create_app(load_config(), db_path, secure_cookies=False),
                           ids=ids, db=db_path)


def same_session(client: TestClient, app: object) -> TestClient:
    """A client of another process that sends the same session cookie."""
    other = TestClient(app, follow_redirects=False)
    other.cookies = client.cookies
    return other


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, read from a page that has no message waiting."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/help").text)
    assert found
    return found.group(1)


def reject(web: SimpleNamespace, client: TestClient, csrf: str, key: str = "zte-ET") -> str:
    """Reject a candidate, as the decide form posts it; the page the answer redirects to."""
    ident = web.ids[key]
    with Store(web.db) as store:
        entry = store.candidates.candidate(ident)
    assert entry is not None
    response = client.post(f"/candidate/{ident}/decide", data={
        "csrf_token": csrf, "version": entry.version, "decision": "reject",
        "reason": "domestic", "return": "queue"})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def flashes(client: TestClient, path: str = "/queue") -> list[tuple[str, str]]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return FLASH.findall(page.text)


def waiting(db_path: Path) -> int:
    """How many messages wait in the accounts file, as its owner counts them."""
    conn = sqlite3.connect(accounts_path(db_path))
    try:
        return int(conn.execute("SELECT COUNT(*) FROM flashes").fetchone()[0])
    finally:
        conn.close()


def test_the_message_of_a_post_on_one_process_is_shown_once_by_the_other(web) -> None:
    first = logged_in(web.first, "alice")
    second = same_session(first, web.second)
    location = reject(web, first, csrf_token(first))
    shown = flashes(second, location)
    assert shown == [("ok", f"#{web.ids['zte-ET']} rejected ({REASON_LABELS['domestic']}). "
                            "Press u to undo.")]
    assert flashes(second) == [] and flashes(first) == []  # shown once, then gone
    assert waiting(web.db) == 0


def test_messages_are_shown_oldest_first(web) -> None:
    first = logged_in(web.first, "alice")
    csrf = csrf_token(first)
    reject(web, first, csrf, "zte-ET")
    reject(web, same_session(first, web.second), csrf, "syndicated")
    shown = [text for _, text in flashes(same_session(first, web.second))]
    assert len(shown) == 2
    assert shown[0].startswith(f"#{web.ids['zte-ET']} rejected")
    assert shown[1].startswith(f"#{web.ids['syndicated']} rejected")


def test_a_message_is_never_shown_to_another_session(web) -> None:
    alice = logged_in(web.first, "alice")
    alice_elsewhere = logged_in(web.second, "alice")  # the same reviewer, another login
    bob = logged_in(web.second, "bob")
    location = reject(web, alice, csrf_token(alice))
    assert flashes(bob, location) == []
    assert flashes(alice_elsewhere, location) == []
    assert [kind for kind, _ in flashes(same_session(alice, web.second), location)] == ["ok"]


def test_logging_out_drops_the_sessions_messages(web) -> None:
    first = logged_in(web.first, "alice")
    csrf = csrf_token(first)
    reject(web, first, csrf)
    assert waiting(web.db) == 1
    second = same_session(first, web.second)
    assert second.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert waiting(web.db) == 0
    again = logged_in(web.first, "alice")
    assert flashes(again) == []


def test_messages_go_with_sessions_that_expire_or_whose_reviewer_is_disabled(db_path) -> None:
    with Store(db_path) as store:
        add_reviewers(store, "alice", "bob")
        alice = store.accounts.user("alice")
        bob = store.accounts.user("bob")
        assert alice and bob
        disabled = store.accounts.create_session(int(bob["id"]), 3600)
        store.accounts.add_flash(disabled["id"], "ok", "Saved dw-000002: stage.")
        expired = store.accounts.create_session(int(alice["id"]), -1)
        store.accounts.add_flash(expired["id"], "ok", "Saved dw-000001: stage.")
        assert waiting(db_path) == 2
        store.accounts.create_session(int(alice["id"]), 3600)  # logging in cleans up
        assert waiting(db_path) == 1
        assert store.accounts.set_disabled("bob", True) == 1
        assert waiting(db_path) == 0
        # a message for a session that has ended is not kept
        store.accounts.add_flash(disabled["id"], "ok", "lost")
        assert waiting(db_path) == 0
        assert store.accounts.take_flashes(disabled["id"]) == []
