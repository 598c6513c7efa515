"""Reviewer accounts: scrypt password hashes (standard library), creation and checks."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import sqlite3

from models.errors import DealwatchError
from pipeline.storage import Store

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


def add_user(store: Store, name: str, password: str) -> int:
    if not NAME.match(name):
        raise AccountError(f"user name {name!r}: letters, digits and _ . @ - only, at most 64")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if store.accounts.user(name) is not None:
        raise AccountError(f"user {name!r} exists already")
    try:
        return store.accounts.add_user(name, hash_password(password))
    except sqlite3.IntegrityError:  # added by someone else in the meantime
        raise AccountError(f"user {name!r} exists already") from None


def authenticate(store: Store, name: str, password: str) -> dict[str, object] | None:
    """The user when name and password match (and the account is enabled), else None."""
    user = store.accounts.user(name)
    if user is None or user["disabled"]:
        verify_password(password, _dummy_hash())
        return None
    return user if verify_password(password, str(user["password_hash"])) else None
