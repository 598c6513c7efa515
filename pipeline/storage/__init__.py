"""Storage: one SQLite database (sqlite-utils), its migrations, and a repository per concern.

Reviewers' credentials (users, sessions, failed logins) live in a second file beside it,
`<database>.accounts`, attached to every connection, so that nothing pointed at the main file
(Datasette, a copy sent to a colleague) can read them.

`Store(path)` opens the database and holds one repository for each concern, all over the same
`Database` (connection, migrations, transactions):

    store.pages       fetched pages and what waits to be processed   (storage/pages.py)
    store.articles    extracted articles, clusters, entities, analyses (storage/articles.py)
    store.candidates  the review queue, candidates, scores, rankers   (storage/candidates.py)
    store.reviews     the append-only audit of decisions              (storage/reviews.py)
    store.registry    deals, their sources and stages, exports, pushes (storage/registry.py)
    store.reports     aggregate claims, filed apart from deals         (storage/reports.py)
    store.accounts    reviewers, sessions, failed logins              (storage/accounts.py)
    store.runs        runs and the configured sources                 (storage/runs.py)

Only this package writes SQL. Everything above it goes through these repositories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.registry import DEAL_FIELDS
from pipeline.storage.accounts import Accounts
from pipeline.storage.articles import Articles
from pipeline.storage.candidates import Candidates
from pipeline.storage.database import (
    CANDIDATE_STATUSES,
    Database,
    StoreError,
    is_busy,
    sha256_hex,
    unsupported_reason,
    utcnow,
)
from pipeline.storage.pages import Pages
from pipeline.storage.queue import QueueQuery
from pipeline.storage.registry import Registry
from pipeline.storage.reports import Reports
from pipeline.storage.reviews import Reviews
from pipeline.storage.runs import Runs
from pipeline.storage.schema import MIGRATIONS

__all__ = ["CANDIDATE_STATUSES", "DEAL_FIELDS", "MIGRATIONS", "Database", "QueueQuery", "Store",
           "StoreError", "is_busy", "sha256_hex", "unsupported_reason", "utcnow"]


class Store:
    """A dealwatch database file and its repositories. Opening it applies pending migrations."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000, migrate: bool = True):
        self.database = Database(path, busy_timeout_ms=busy_timeout_ms, migrate=migrate)
        self.path = self.database.path
        self.db = self.database.db  # sqlite-utils, for the tests and tools that read tables
        self.pages = Pages(self.database)
        self.articles = Articles(self.database)
        self.candidates = Candidates(self.database)
        self.reviews = Reviews(self.database)
        self.registry = Registry(self.database)
        self.reports = Reports(self.database)
        self.accounts = Accounts(self.database)
        self.runs = Runs(self.database)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        return self.database.schema_version()

    def migrate(self) -> list[tuple[int, str]]:
        return self.database.migrate()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All of it is written, or none of it (see Database.transaction)."""
        with self.database.transaction():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read of several queries (see Database.snapshot)."""
        with self.database.snapshot():
            yield

    def count(self, table: str) -> int:
        return self.database.count(table)

    def counts(self) -> dict[str, int]:
        return self.database.counts()
