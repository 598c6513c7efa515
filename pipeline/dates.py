"""Dates as feeds, sitemaps and HTTP headers write them: normalised, read back, as days and as waits."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime


def http_datetime(text: str) -> datetime | None:
    """An RFC 822 / HTTP date as an aware datetime, None when unreadable.

    A date without a zone, or with RFC 2822's "-0000" (UTC, local zone unknown), is taken as UTC.
    """
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _read(text: str) -> tuple[datetime, bool] | None:
    """(datetime, a date alone?) of an ISO 8601 or RFC 822 date, None when unreadable."""
    try:
        return datetime.fromisoformat(text), len(text) == 10
    except ValueError:
        parsed = http_datetime(text)
        return (parsed, False) if parsed is not None else None


def normalise_date(raw: str | None) -> str | None:
    """ISO 8601 (UTC, 'Z') for RFC 822 and ISO dates; a date alone stays a date; else as given.

    What cannot be read is kept as the feed wrote it, for a person to see; listed_datetime()
    tells whether a value is a date.
    """
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    read = _read(raw)
    if read is None:
        return raw
    parsed, day_only = read
    if day_only:  # no time to convert
        return parsed.date().isoformat()
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listed_datetime(value: str | None) -> datetime | None:
    """A listed date (ISO 8601, as normalise_date writes it, or RFC 822) as an aware datetime;
    None when it is no date. A date alone is its midnight UTC.

    This is the one test of "is this a date": sorting, date windows and days all use it.
    """
    if not value or not value.strip():
        return None
    read = _read(value.strip())
    if read is None:
        return None
    parsed = read[0]
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso_day(value: str | None) -> str | None:
    """The calendar day (YYYY-MM-DD) of a readable date, as written: a time keeps the day of
    its own zone. None when the value is no date, or no real day (2024-02-31)."""
    if not value or not value.strip():
        return None
    read = _read(value.strip())
    return read[0].date().isoformat() if read is not None else None


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date; a date in the
    past is 0), or None when there is no such header or it cannot be read.

    now: the current time as a Unix timestamp (default: the clock).
    """
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    when = http_datetime(text)
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
