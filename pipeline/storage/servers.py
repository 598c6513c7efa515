"""The database and Redis servers a store or a crawl frontier connects to: their URLs shown without
the password, and a first connection that turns an unreachable server into one line.

`--db` takes a SQLite path or a PostgreSQL URL; `is_database_url` tells which. Whatever is said
about a URL goes through `redact`: a password never reaches a log, an error or a terminal.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple
from urllib.parse import unquote

import psycopg
import redis

from models.errors import DealwatchError
from pipeline.urls import is_database_url

# Query parameters that carry a secret (libpq takes `password` in the query string as well).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
HIDDEN = "***"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# libpq's "connection to server at "127.0.0.1", port 5999 failed: " before the reason itself.
_PG_ATTEMPT = re.compile(r'^.*?connection to server (?:at|on) .*? failed: ')
_PG_SEVERITY = re.compile(r"^(?:FATAL|ERROR):\s+")
# redis-py's "Error 111 connecting to 127.0.0.1:5999. " before the reason itself.
_REDIS_ATTEMPT = re.compile(r"^Error -?\d+ connecting to \S+?\.\s+")


__all__ = ["ServerError", "check_postgres", "check_redis", "connect_postgres", "is_database_url",
           "postgres_problem", "redact"]


class ServerError(DealwatchError):
    """A database or Redis server that cannot be reached, or that refuses us."""


class _Parts(NamedTuple):
    scheme: str  # "postgresql://"
    userinfo: str | None  # "user:password", None without an `@`
    rest: str  # host, port and path
    query: str  # "?…#…", or ""


def _parts(url: str) -> _Parts | None:
    """A URL cut where its password may sit; None for text that is not a URL.

    The credentials end at the last `@` before the query: a password with an unescaped `/` or `@`
    in it still counts as the password, never as the host."""
    scheme = _SCHEME.match(url)
    if not scheme:
        return None
    after = url[scheme.end():]
    query_at = after.find("?")
    head, query = (after, "") if query_at < 0 else (after[:query_at], after[query_at:])
    userinfo, at, rest = head.rpartition("@")
    return _Parts(scheme.group(), userinfo if at else None, rest, query)


def _redact_query(query: str) -> str:
    """A `?…` query string without its secret parameters."""
    if not query:
        return ""
    body, hash_, fragment = query[1:].partition("#")
    kept = [pair for pair in body.split("&")
            if pair and unquote(pair.partition("=")[0]).lower() not in SECRET_PARAMETERS]
    return ("?" + "&".join(kept) if kept else "") + hash_ + fragment


def redact(url: str) -> str:
    """The URL without its password (in the user part or the query string), to be shown."""
    parts = _parts(url)
    if parts is None:
        return url
    user = "" if parts.userinfo is None else parts.userinfo.partition(":")[0]
    return f"{parts.scheme}{user + '@' if user else ''}{parts.rest}{_redact_query(parts.query)}"


def _secrets(url: str) -> list[str]:
    """Every form of the URL's passwords a driver's message might echo, longest first."""
    parts = _parts(url)
    if parts is None:
        return []
    found: list[str] = []
    if parts.userinfo is not None:
        password = parts.userinfo.partition(":")[2]
        found += [password, unquote(password)]
    for pair in parts.query[1:].partition("#")[0].split("&"):
        name, _eq, value = pair.partition("=")
        if unquote(name).lower() in SECRET_PARAMETERS and value:
            found += [value, unquote(value)]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def _hide(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, HIDDEN)
    return text


def _sentence(text: str) -> str:
    """One line, without a closing full stop."""
    return " ".join(text.split()).rstrip(".") or "no reason given"


def _after_attempt(attempt: re.Pattern[str], line: str) -> str:
    """What follows a driver's "connecting to HOST failed:": the system's word for the failure
    ("Connection refused") in lower case, as it reads after a colon, or the server's message."""
    reason = attempt.sub("", line, count=1)
    if reason != line and reason[:1].isupper() and reason[1:2].islower():
        reason = reason[0].lower() + reason[1:]
    return reason


def _postgres_reason(exc: psycopg.Error) -> str:
    """libpq's reason, without its preamble and hints: "connection refused", "database "x" does
    not exist", "password authentication failed for user "x"", one per address it tried."""
    reasons: list[str] = []
    for line in str(exc).splitlines():
        if not line.strip() or line.startswith("\t") or line.rstrip().endswith("All failures were:"):
            continue  # blank, libpq's hint ("Is the server running…?"), or the list's heading
        line = line.strip().removeprefix("- ")
        for prefix in ("connection failed: ", "connection is bad: "):
            line = line.removeprefix(prefix)
        reason = _sentence(_PG_SEVERITY.sub("", _after_attempt(_PG_ATTEMPT, line)))
        if reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons) or _sentence(type(exc).__name__)


def _redis_reason(exc: Exception) -> str:
    if isinstance(exc, redis.TimeoutError):
        return "timed out"
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return _sentence(_after_attempt(_REDIS_ATTEMPT, lines[0]))


def connect_postgres(url: str, timeout: float = 10.0, **options: Any) -> psycopg.Connection[Any]:
    """A connection to the PostgreSQL server at `url`; a ServerError in one line, naming the URL
    without its password, when it cannot be made."""
    shown = redact(url)
    if not is_database_url(url):
        raise ServerError(f"not a PostgreSQL URL: {shown} (expected postgresql://user@host:port/name)")
    try:
        # libpq counts whole seconds, and treats fewer than 2 as 2.
        return psycopg.connect(url, connect_timeout=max(2, math.ceil(timeout)), **options)
    except psycopg.Error as exc:
        raise ServerError(postgres_problem(url, exc)) from None


def postgres_problem(url: str, exc: psycopg.Error, doing: str = "reach") -> str:
    """One line on a PostgreSQL error: the URL without its password, and libpq's reason (which may
    quote the password, a badly escaped one say: hidden too)."""
    return f"cannot {doing} the database at {redact(url)}: {_hide(_postgres_reason(exc), url)}"


def check_postgres(url: str, timeout: float = 10.0) -> None:
    """Connect once to the PostgreSQL server at `url` and run a query; a ServerError in one line,
    naming the URL without its password, when that fails."""
    with connect_postgres(url, timeout) as conn:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ServerError(postgres_problem(url, exc)) from None


def check_redis(url: str, timeout: float = 10.0) -> None:
    """Connect once to the Redis server at `url` and PING it; a ServerError in one line, naming
    the URL without its password, when that fails."""
    shown = redact(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as exc:  # redis-py's word on a URL it cannot read (scheme, port, db)
        raise ServerError(f"cannot reach Redis at {shown}: {_hide(_sentence(str(exc)), url)}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServerError(f"cannot reach Redis at {shown}: {_hide(_redis_reason(exc), url)}") from None
    finally:
        client.close()
