"""Reviewer accounts: scrypt password hashes (standard library), creation, checks, and
disabling, enabling and new passwords (each of which ends sessions as it must)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

from models.errors import DealwatchError
from models.registry import Reviewer
from pipeline.storage import Store
from pipeline.storage.database import StoreConflict

# scrypt cost: 2**15 × 8 × 1 takes ~50 ms and 32 MiB here — slow for guessing, fine for a login.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 10
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AccountError(DealwatchError):
    """A reviewer account cannot be created or used as asked."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so timing does not reveal names."""
    return hash_password(secrets.token_urlsafe(16))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")


def _unknown(name: str) -> AccountError:
    return AccountError(f"no reviewer named {name!r} (`dealwatch user list` shows them)")


def add_user(store: Store, name: str, password: str) -> int:
    if not NAME.match(name):
        raise AccountError(f"user name {name!r}: letters, digits and _ . @ - only, at most 64")
    _check_password(password)
    if store.accounts.user(name) is not None:
        raise AccountError(f"user {name!r} exists already")
    try:
        return store.accounts.add_user(name, hash_password(password))
    except StoreConflict:  # added by someone else in the meantime
        raise AccountError(f"user {name!r} exists already") from None


def authenticate(store: Store, name: str, password: str) -> dict[str, object] | None:
    """The user when name and password match (and the account is enabled), else None."""
    user = store.accounts.user(name)
    if user is None or user["disabled"]:
        verify_password(password, _dummy_hash())
        return None
    return user if verify_password(password, str(user["password_hash"])) else None


def reviewer(store: Store, name: str) -> Reviewer:
    """The reviewer of that name; AccountError when there is none."""
    found = store.accounts.reviewer(name)
    if found is None:
        raise _unknown(name)
    return found


def disable_user(store: Store, name: str) -> int:
    """Refuse the reviewer's logins from now on and end every session of theirs (the web app
    refuses their cookie on the next request). How many sessions it ended."""
    ended = store.accounts.set_disabled(name, True)
    if ended is None:
        raise _unknown(name)
    return ended


def enable_user(store: Store, name: str) -> None:
    """Let a disabled reviewer log in again (with the password they had)."""
    if store.accounts.set_disabled(name, False) is None:
        raise _unknown(name)


def change_password(store: Store, name: str, password: str, keep_session: str | None = None
                    ) -> int:
    """Give the reviewer a new password and end their sessions, all but `keep_session` (the
    token of the session that asked, when a reviewer changes their own). How many it ended."""
    _check_password(password)
    ended = store.accounts.set_password(name, hash_password(password), keep_session)
    if ended is None:
        raise _unknown(name)
    return ended
