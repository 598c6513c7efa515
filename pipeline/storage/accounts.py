"""Reviewer accounts: users, login sessions and failed logins."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.storage.database import Database, utcnow


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Accounts:
    """The users, sessions and login_failures tables."""

    def __init__(self, database: Database):
        self.database = database
        self.db = database.db

    def add_user(self, name: str, password_hash: str) -> int:
        cur = self.db.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)",
            [name, password_hash, utcnow()])
        return int(cur.lastrowid or 0)

    def user(self, name: str | None = None, user_id: int | None = None) -> dict[str, Any] | None:
        if user_id is not None:
            rows = list(self.db.query("SELECT * FROM users WHERE id = ?", [user_id]))
        else:
            rows = list(self.db.query("SELECT * FROM users WHERE name = ?", [name]))
        return rows[0] if rows else None

    def users(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT id, name, created_at, disabled FROM users ORDER BY name"))

    # The database is meant to be read by anyone with Datasette: it keeps only a hash of each
    # session token, so reading it does not let anyone act as a logged-in reviewer.

    def create_session(self, user_id: int, ttl_seconds: float) -> dict[str, Any]:
        """A new session; its `id` (the token for the cookie) is stored only as a hash."""
        token = secrets.token_urlsafe(32)
        session = {"id": _token_hash(token), "user_id": user_id,
                   "csrf_token": secrets.token_urlsafe(32), "created_at": utcnow(),
                   "expires_at": _later(ttl_seconds)}
        self.db.execute("DELETE FROM sessions WHERE expires_at <= ?", [utcnow()])
        self.db.execute("INSERT INTO sessions (id, user_id, csrf_token, created_at, expires_at) "
                        "VALUES (:id, :user_id, :csrf_token, :created_at, :expires_at)", session)
        return {**session, "id": token}

    def session(self, token: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT s.*, u.name AS user_name FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ? AND s.expires_at > ? AND u.disabled = 0",
            [_token_hash(token), utcnow()]))
        return {**rows[0], "id": token} if rows else None

    def delete_session(self, token: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ? OR expires_at <= ?",
                        [_token_hash(token), utcnow()])

    def record_login_failure(self, name: str, address: str) -> None:
        # failures older than a day count for nothing any more
        self.db.execute("DELETE FROM login_failures WHERE at < ?", [_later(-86400)])
        self.db.execute("INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                        [name, address, utcnow()])

    def login_failures(self, name: str, address: str, window_seconds: float) -> int:
        since = (datetime.now(UTC) - timedelta(seconds=window_seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        row = self.db.execute(
            "SELECT COUNT(*) FROM login_failures WHERE (name = ? OR address = ?) AND at >= ?",
            [name, address, since]).fetchone()
        return int(row[0])

    def clear_login_failures(self, name: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE name = ?", [name])
