"""The base of every error a user can fix; the CLI shows these as one line and exits 1."""

from __future__ import annotations


class DealwatchError(Exception):
    """A handled failure: bad config, unreadable input, unreachable database, failed crawl."""
