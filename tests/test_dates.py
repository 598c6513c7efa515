"""Dates from feeds, sitemaps and HTTP headers: normalised, read back, as days and as waits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.dates import http_datetime, iso_day, listed_datetime, normalise_date, retry_after_seconds


@pytest.mark.parametrize(("raw", "expected"), [
    ("Tue, 10 Jun 2025 08:30:00 GMT", "2025-06-10T08:30:00Z"),
    ("Tue, 10 Jun 2025 08:30:00 -0000", "2025-06-10T08:30:00Z"),
    ("2025-06-10T08:30:00+02:00", "2025-06-10T06:30:00Z"),
    ("2025-06-10", "2025-06-10"),
    ("3 Jun 2025", "3 Jun 2025"),  # unreadable: kept as written
    ("", None),
])
def test_normalise_date(raw: str, expected: str | None) -> None:
    assert normalise_date(raw) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-06-10T06:30:00Z", datetime(2025, 6, 10, 6, 30, tzinfo=UTC)),
    ("2025-06-10", datetime(2025, 6, 10, tzinfo=UTC)),
    ("2025-06-10T06:30:00", datetime(2025, 6, 10, 6, 30, tzinfo=UTC)),
    ("Tue, 10 Jun 2025 08:30:00 +0200", datetime(2025, 6, 10, 6, 30, tzinfo=UTC)),
    ("3 Jun 2025", None), ("last Tuesday", None), ("2024-02-31", None), ("", None), (None, None),
])
def test_listed_datetime_is_the_one_test_of_a_date(value: str | None,
                                                   expected: datetime | None) -> None:
    assert listed_datetime(value) == expected


@pytest.mark.parametrize(("value", "day"), [
    ("2025-06-10T06:30:00Z", "2025-06-10"), ("2025-06-10", "2025-06-10"),
    ("2025-06-10T23:30:00-05:00", "2025-06-10"),  # the day as written, not UTC's
    ("Tue, 10 Jun 2025 08:30:00 GMT", "2025-06-10"),
    ("2024-02-29", "2024-02-29"), ("2024-02-31", None), ("2025-13-01", None),
    ("2024-02-31T10:00:00Z", None), ("3 Jun 2025", None), (" ", None), (None, None),
])
def test_iso_day_validates_the_calendar_day(value: str | None, day: str | None) -> None:
    assert iso_day(value) == day


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "seconds"), [
    (b"120", 120.0), (" 7 ", 7.0), ("0", 0.0),
    ("Sun, 29 Nov 2026 12:01:00 GMT", 60.0),
    ("Sun, 29 Nov 2026 12:01:00 -0000", 60.0), ("Sun, 29 Nov 2026 12:01:00", 60.0),  # UTC
    ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait
    ("-5", None), ("1.5", None), ("\u00b2", None), ("soon", None), ("Sun, 29", None),
    ("", None), (None, None),
])
def test_retry_after_seconds(value: bytes | str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_http_datetime_is_aware() -> None:
    assert http_datetime("Sun, 29 Nov 2026 12:00:00 -0000") == datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert http_datetime("not a date") is None
