"""Reviewer accounts: users, login sessions, their flash messages and failed logins, in the
accounts file."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from models.registry import Reviewer
from pipeline.storage.database import Database, StoreError, utcnow

# The tables live in the accounts file beside the main database (attached as `accounts`, see
# schema.ACCOUNTS_SCHEMA): whoever is handed the main database, or points Datasette at it, sees
# no password hash, session or failed login. Every statement here names them with the schema.


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reviewer(row: dict[str, Any]) -> Reviewer:
    return Reviewer(id=int(row["id"]), name=str(row["name"]), created_at=str(row["created_at"]),
                    disabled=bool(row["disabled"]), last_login_at=row["last_login_at"])


class Accounts:
    """The users, sessions, flashes and login_failures tables of the accounts file."""

    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        """The database, with the accounts reachable; StoreError when they are not."""
        if self.database.accounts_error:
            raise StoreError(self.database.accounts_error)
        return self.database

    def add_user(self, name: str, password_hash: str) -> int:
        return int(self.db.execute(
            "INSERT INTO accounts.users (name, password_hash, created_at) VALUES (?, ?, ?) "
            "RETURNING id", [name, password_hash, utcnow()]).fetchone()[0])

    def user(self, name: str | None = None, user_id: int | None = None) -> dict[str, Any] | None:
        """The account row with its password hash, for checking a login (else see reviewer())."""
        if user_id is not None:
            rows = list(self.db.query("SELECT * FROM accounts.users WHERE id = ?", [user_id]))
        else:
            rows = list(self.db.query("SELECT * FROM accounts.users WHERE name = ?", [name]))
        return rows[0] if rows else None

    def reviewer(self, name: str) -> Reviewer | None:
        rows = list(self.db.query(
            "SELECT id, name, created_at, disabled, last_login_at FROM accounts.users "
            "WHERE name = ?", [name]))
        return _reviewer(rows[0]) if rows else None

    def users(self) -> list[Reviewer]:
        """Every reviewer, by name."""
        return [_reviewer(row) for row in self.db.query(
            "SELECT id, name, created_at, disabled, last_login_at FROM accounts.users "
            "ORDER BY name")]

    def set_disabled(self, name: str, disabled: bool) -> int | None:
        """Disable (or enable) a reviewer; disabling also ends every session of theirs. The
        number of sessions ended, or None when there is no such reviewer."""
        with self.database.transaction(immediate=False):  # the accounts file alone
            cur = self.db.execute("UPDATE accounts.users SET disabled = ? WHERE name = ?",
                                  [int(disabled), name])
            if cur.rowcount == 0:
                return None
            return self._end_sessions(name) if disabled else 0

    def set_password(self, name: str, password_hash: str, keep_token: str | None = None
                     ) -> int | None:
        """A new password hash; every session of the reviewer ends but the one whose token is
        `keep_token` (the session that changed it, if any). The number of sessions ended, or
        None when there is no such reviewer."""
        with self.database.transaction(immediate=False):  # the accounts file alone
            cur = self.db.execute("UPDATE accounts.users SET password_hash = ? WHERE name = ?",
                                  [password_hash, name])
            if cur.rowcount == 0:
                return None
            return self._end_sessions(name, keep_token)

    def _end_sessions(self, name: str, keep_token: str | None = None) -> int:
        keep = _token_hash(keep_token) if keep_token else ""
        cur = self.db.execute(
            "DELETE FROM accounts.sessions WHERE id != ? AND user_id = "
            "(SELECT id FROM accounts.users WHERE name = ?)", [keep, name])
        return int(cur.rowcount)

    # A session's token is stored only as a hash, so reading the accounts file does not let
    # anyone act as a logged-in reviewer.

    def create_session(self, user_id: int, ttl_seconds: float) -> dict[str, Any]:
        """A new session; its `id` (the token for the cookie) is stored only as a hash. Records
        the login on the reviewer."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session = {"id": _token_hash(token), "user_id": user_id,
                   "csrf_token": secrets.token_urlsafe(32), "created_at": now,
                   "expires_at": _later(ttl_seconds)}
        self.db.execute("DELETE FROM accounts.sessions WHERE expires_at <= ?", [now])
        self.db.execute("INSERT INTO accounts.sessions (id, user_id, csrf_token, created_at, "
                        "expires_at) VALUES (?, ?, ?, ?, ?)",
                        [session[k] for k in ("id", "user_id", "csrf_token", "created_at",
                                              "expires_at")])
        self.db.execute("UPDATE accounts.users SET last_login_at = ? WHERE id = ?",
                        [now, user_id])
        return {**session, "id": token}

    def session(self, token: str) -> dict[str, Any] | None:
        """The live session of an enabled reviewer that this token names, if any."""
        rows = list(self.db.query(
            "SELECT s.*, u.name AS user_name FROM accounts.sessions s "
            "JOIN accounts.users u ON u.id = s.user_id "
            "WHERE s.id = ? AND s.expires_at > ? AND u.disabled = 0",
            [_token_hash(token), utcnow()]))
        return {**rows[0], "id": token} if rows else None

    def sessions_of(self, name: str) -> int:
        """How many live sessions the reviewer has."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM accounts.sessions s JOIN accounts.users u ON u.id = s.user_id "
            "WHERE u.name = ? AND s.expires_at > ?", [name, utcnow()]).fetchone()
        return int(row[0])

    def delete_session(self, token: str) -> None:
        self.db.execute("DELETE FROM accounts.sessions WHERE id = ? OR expires_at <= ?",
                        [_token_hash(token), utcnow()])

    # Flash messages wait in the accounts file for the session's next page, whichever server
    # process serves it; they go with their session (ON DELETE CASCADE).

    def add_flash(self, token: str, kind: str, text: str) -> None:
        """A message ("ok", "info" or "error") for the next page of the session this token
        names; none when the session has ended."""
        self.db.execute(
            "INSERT INTO accounts.flashes (session_id, kind, text, created_at) "
            "SELECT id, ?, ?, ? FROM accounts.sessions WHERE id = ?",
            [kind, text, utcnow(), _token_hash(token)])

    def take_flashes(self, token: str) -> list[tuple[str, str]]:
        """The session's waiting messages as (kind, text), oldest first, deleted as they are
        read (one statement, so two pages at once never both show one)."""
        session_id = _token_hash(token)
        # most pages have none: look before taking the accounts file's write lock
        if not self.db.execute("SELECT 1 FROM accounts.flashes WHERE session_id = ? LIMIT 1",
                               [session_id]).fetchone():
            return []
        rows = self.db.execute("DELETE FROM accounts.flashes WHERE session_id = ? "
                               "RETURNING id, kind, text", [session_id]).fetchall()
        return [(kind, text) for _, kind, text in sorted(rows)]

    def record_login_failure(self, name: str, address: str) -> None:
        # failures older than a day count for nothing any more
        self.db.execute("DELETE FROM accounts.login_failures WHERE at < ?", [_later(-86400)])
        self.db.execute("INSERT INTO accounts.login_failures (name, address, at) VALUES (?, ?, ?)",
                        [name, address, utcnow()])

    def login_failures(self, name: str, address: str, window_seconds: float) -> int:
        since = (datetime.now(UTC) - timedelta(seconds=window_seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        row = self.db.execute(
            "SELECT COUNT(*) FROM accounts.login_failures WHERE (name = ? OR address = ?) "
            "AND at >= ?", [name, address, since]).fetchone()
        return int(row[0])

    def clear_login_failures(self, name: str) -> None:
        self.db.execute("DELETE FROM accounts.login_failures WHERE name = ?", [name])
