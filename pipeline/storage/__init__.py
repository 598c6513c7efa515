"""Storage: one SQLite database (sqlite-utils), its migrations, and a repository per concern.

`Store(path)` opens the database and holds one repository for each concern, all over the same
`Database` (connection, migrations, transactions):

    store.pages       fetched pages and what waits to be processed   (storage/pages.py)
    store.articles    extracted articles, clusters, entities, analyses (storage/articles.py)
    store.candidates  the review queue, candidates, scores, rankers   (storage/candidates.py)
    store.reviews     the append-only audit of decisions              (storage/reviews.py)
    store.registry    deals, their sources and stages, exports, pushes (storage/registry.py)
    store.accounts    reviewers, sessions, failed logins              (storage/accounts.py)
    store.runs        runs and the configured sources                 (storage/runs.py)

Only this package writes SQL. Everything above it goes through these repositories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pipeline.storage.accounts import Accounts
from pipeline.storage.articles import Articles
from pipeline.storage.candidates import Candidates
from pipeline.storage.database import (
    CANDIDATE_STATUSES,
    DEAL_FIELDS,
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

    # Transitional, while callers move to the repositories: the old flat method names.
    _LEGACY: ClassVar[dict[str, str]] = {
        'known_article_urls': 'pages', 'validators_of': 'pages', 'record_check': 'pages',
        'save_page': 'pages', 'pages_to_process': 'pages', 'count_pages_to_process': 'pages',
        'mark_page': 'pages', 'mark_article_pages': 'pages', 'prune_html': 'pages',
        'article_by_hash': 'articles', 'save_article': 'articles', 'set_article_language': 'articles',
        'set_language_verdict': 'articles', 'unsupported_languages': 'articles',
        'save_signature': 'articles', 'recent_signatures': 'articles', 'set_cluster': 'articles',
        'save_analysis': 'articles', 'articles_for_reanalysis': 'articles', 'entities_of': 'articles',
        'queue': 'candidates', 'queue_page': 'candidates', 'cluster_copies': 'candidates',
        'attach_copies': 'candidates', 'queue_status_counts': 'candidates',
        'count_hidden': 'candidates', 'candidate': 'candidates', 'cluster_group': 'candidates',
        'set_candidate': 'candidates', 'candidate_countries': 'candidates',
        'candidate_languages': 'candidates', 'stored_candidates': 'candidates',
        'decided_candidates': 'candidates', 'set_scores': 'candidates', 'record_ranker': 'candidates',
        'newest_ranker': 'candidates', 'add_review': 'reviews', 'reviews_of': 'reviews',
        'last_batch': 'reviews', 'deal': 'registry', 'deals': 'registry', 'deals_like': 'registry',
        'insert_deal': 'registry', 'update_deal': 'registry', 'delete_deal': 'registry',
        'add_deal_source': 'registry', 'move_deal_sources': 'registry', 'unlink_source': 'registry',
        'remove_deal_sources': 'registry', 'deal_sources': 'registry', 'deal_source_counts': 'registry',
        'set_reported_stage': 'registry', 'add_stage': 'registry', 'deal_stages': 'registry',
        'record_export': 'registry', 'pushed_versions': 'registry', 'record_push': 'registry',
        'add_user': 'accounts', 'user': 'accounts', 'users': 'accounts', 'create_session': 'accounts',
        'session': 'accounts', 'delete_session': 'accounts', 'record_login_failure': 'accounts',
        'login_failures': 'accounts', 'clear_login_failures': 'accounts', 'sync_sources': 'runs',
        'source_ids': 'runs', 'start_run': 'runs', 'finish_run': 'runs', 'abort_stale_runs': 'runs',
        'last_run_started': 'runs', 'runs': 'runs',
    }

    def __getattr__(self, name: str) -> Any:
        repo = Store._LEGACY.get(name)
        if repo is None:
            raise AttributeError(name)
        return getattr(getattr(self, repo), "recent" if name == "runs" else name)
