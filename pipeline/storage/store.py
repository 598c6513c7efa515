"""The only module that talks to SQLite: schema migrations, idempotent writes, queue reads."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from models.config import Source
from models.errors import DealwatchError
from models.records import Article, Candidate, Entity, Page
from pipeline.ingest.dedup import Signature, canonical_url
from pipeline.storage.registry_store import QueueQuery, RegistryStore, decode_row, utcnow

logger = logging.getLogger(__name__)

CANDIDATE_STATUSES = ("pending", "confirmed", "rejected", "deferred")


class StoreError(DealwatchError):
    """The database cannot be opened, migrated or written."""


def is_busy(exc: BaseException) -> bool:
    """A statement that waited out the busy timeout while another process was writing."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc))


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# --- migrations -----------------------------------------------------------------------------

_SCHEMA_1 = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    urls TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    config TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL DEFAULT 'running',
    sources TEXT,
    counters TEXT NOT NULL DEFAULT '{}',
    message TEXT,
    pid INTEGER
);
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    final_url TEXT,
    source_id TEXT REFERENCES sources(id),
    role TEXT NOT NULL DEFAULT 'article',
    status INTEGER,
    content_type TEXT,
    headers TEXT,
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL,
    content_hash TEXT,
    size INTEGER,
    html BLOB,
    error TEXT,
    referrer TEXT,
    listed_title TEXT,
    listed_date TEXT,
    run_id INTEGER REFERENCES runs(id),
    process_status TEXT,
    process_reason TEXT,
    processed_at TEXT,
    article_id INTEGER REFERENCES articles(id)
);
CREATE INDEX pages_to_process ON pages(role, process_status);
CREATE INDEX pages_source ON pages(source_id);
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    canonical_url TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    page_id INTEGER REFERENCES pages(id),
    source_id TEXT REFERENCES sources(id),
    title TEXT,
    author TEXT,
    published TEXT,
    site TEXT,
    language TEXT,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL UNIQUE,
    cluster_id INTEGER,
    extracted_at TEXT NOT NULL,
    analysed_at TEXT,
    analyser TEXT
);
CREATE TABLE entities (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id),
    label TEXT NOT NULL,
    ent_id TEXT,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    UNIQUE (article_id, start, "end", label)
);
CREATE INDEX entities_lookup ON entities(label, ent_id);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id),
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    vendor TEXT,
    vendors TEXT NOT NULL DEFAULT '[]',
    country TEXT,
    counterpart TEXT,
    counterpart_type TEXT,
    deal_type TEXT,
    deal_types TEXT NOT NULL DEFAULT '[]',
    stage TEXT,
    value REAL,
    currency TEXT,
    year INTEGER,
    score REAL NOT NULL,
    sentence TEXT NOT NULL,
    start INTEGER,
    "end" INTEGER,
    signals TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'rejected', 'deferred')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX candidates_queue ON candidates(status, score DESC);
CREATE INDEX candidates_article ON candidates(article_id);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    edits TEXT,
    note TEXT,
    previous_status TEXT
);
CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is an append-only audit table'); END;
CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is an append-only audit table'); END;
CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    deal_id TEXT NOT NULL UNIQUE,
    vendor TEXT,
    vendors TEXT NOT NULL DEFAULT '[]',
    country TEXT,
    counterpart TEXT,
    counterpart_type TEXT,
    deal_type TEXT,
    deal_types TEXT NOT NULL DEFAULT '[]',
    stage TEXT,
    value REAL,
    currency TEXT,
    year INTEGER,
    first_reported TEXT,
    last_reported TEXT,
    confirmed_by TEXT,
    confirmed_at TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE deal_sources (
    deal_id INTEGER NOT NULL REFERENCES deals(id),
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    article_id INTEGER REFERENCES articles(id),
    url TEXT,
    title TEXT,
    published TEXT,
    sentence TEXT,
    added_at TEXT NOT NULL,
    PRIMARY KEY (deal_id, candidate_id)
);
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    exported_at TEXT NOT NULL,
    format TEXT NOT NULL,
    destination TEXT,
    since TEXT,
    deals INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT
);
"""


def _migration_1(db: Database) -> None:
    db.executescript(_SCHEMA_1)


def _migration_2(db: Database) -> None:
    # Full-text search over articles, kept in step by triggers.
    db.table("articles").enable_fts(["title", "text"], create_triggers=True, tokenize="porter")


def _migration_3(db: Database) -> None:
    # The canonical form of each page URL, so "already stored?" survives tracking parameters,
    # www., http/https and AMP variants; and when a page was last checked (a 304 keeps the body).
    db.executescript("""
        ALTER TABLE pages ADD COLUMN canonical_url TEXT;
        ALTER TABLE pages ADD COLUMN checked_at TEXT;
        ALTER TABLE pages ADD COLUMN check_status INTEGER;
    """)
    rows = db.execute("SELECT id, COALESCE(final_url, url) FROM pages").fetchall()
    db.conn.executemany("UPDATE pages SET canonical_url = ? WHERE id = ?",
                        [(canonical_url(url), page_id) for page_id, url in rows])
    db.execute("CREATE INDEX pages_canonical ON pages(canonical_url)")


def _migration_4(db: Database) -> None:
    # MinHash signatures of article texts, kept so near-duplicate clustering works across runs.
    db.executescript("""
        CREATE TABLE article_signatures (
            article_id INTEGER PRIMARY KEY REFERENCES articles(id),
            num_perm INTEGER NOT NULL,
            shingles INTEGER NOT NULL,
            signature BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX articles_cluster ON articles(cluster_id);
        UPDATE articles SET cluster_id = id WHERE cluster_id IS NULL;
    """)


def _migration_5(db: Database) -> None:
    # Review and registry: who decided what (optimistic versions catch two reviewers at once),
    # reviewer accounts and sessions, deal stage history, merges, and pushes to a registry.
    db.executescript("""
        ALTER TABLE candidates ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE candidates ADD COLUMN reviewed_by TEXT;
        ALTER TABLE candidates ADD COLUMN reviewed_at TEXT;
        ALTER TABLE candidates ADD COLUMN reason TEXT;
        ALTER TABLE candidates ADD COLUMN note TEXT;
        ALTER TABLE candidates ADD COLUMN deal_id INTEGER REFERENCES deals(id);
        CREATE INDEX candidates_vendor ON candidates(status, vendor, score DESC);
        CREATE INDEX candidates_country ON candidates(status, country, score DESC);
        CREATE INDEX candidates_deal ON candidates(deal_id);
        ALTER TABLE reviews ADD COLUMN batch TEXT;
        ALTER TABLE reviews ADD COLUMN undoes TEXT;
        ALTER TABLE reviews ADD COLUMN previous TEXT;
        ALTER TABLE reviews ADD COLUMN version INTEGER;
        ALTER TABLE reviews ADD COLUMN deal_id INTEGER;
        CREATE INDEX reviews_candidate ON reviews(candidate_id, id);
        CREATE INDEX reviews_reviewer ON reviews(reviewer, id);
        CREATE INDEX reviews_batch ON reviews(batch);
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX login_failures_lookup ON login_failures(name, address, at);
        ALTER TABLE deals ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE deals ADD COLUMN merged_into INTEGER REFERENCES deals(id);
        ALTER TABLE deals ADD COLUMN created_by_batch TEXT;
        ALTER TABLE deal_sources ADD COLUMN batch TEXT;
        CREATE TABLE deal_stages (
            id INTEGER PRIMARY KEY,
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            stage TEXT NOT NULL,
            reported_at TEXT,
            recorded_at TEXT NOT NULL,
            candidate_id INTEGER REFERENCES candidates(id),
            reviewer TEXT,
            batch TEXT
        );
        CREATE INDEX deal_stages_deal ON deal_stages(deal_id, reported_at);
        CREATE TABLE deal_pushes (
            endpoint TEXT NOT NULL,
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            version INTEGER NOT NULL,
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            pushed_at TEXT,
            PRIMARY KEY (endpoint, deal_id, version)
        );
    """)


def _migration_6(db: Database) -> None:
    # Deal ids never come back: a withdrawn deal's number (dw-000007) must not name another
    # deal, or a registry that saw the first would take the second for it.
    db.executescript("""
        CREATE TABLE deal_numbers (last INTEGER NOT NULL);
        INSERT INTO deal_numbers (last) SELECT COALESCE(MAX(id), 0) FROM deals;
    """)


def _migration_7(db: Database) -> None:
    # The ranker: what drove each score, whether the queue's default view shows the candidate
    # (candidates stored before keep showing until `process --rescore`), and the models trained
    # for this database (the newest is the default ranker of `process`).
    db.executescript("""
        ALTER TABLE candidates ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE candidates ADD COLUMN queued INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE rankers (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            summary TEXT NOT NULL
        );
    """)


def _migration_8(db: Database) -> None:
    # The language of each article (issue 9): `language` held what the page declared; now it is
    # the declared language confirmed by identification, beside what was declared, where the
    # language came from and how sure the identifier was. `supported`: 1 analysed in its
    # language, 0 not analysed (a language without patterns), NULL not analysed yet. Articles
    # stored before keep their declaration and are identified when next analysed
    # (`process --reanalyse`): language_source NULL says so.
    db.executescript("""
        ALTER TABLE articles ADD COLUMN language_declared TEXT;
        ALTER TABLE articles ADD COLUMN language_source TEXT;
        ALTER TABLE articles ADD COLUMN language_confidence REAL;
        ALTER TABLE articles ADD COLUMN supported INTEGER;
        UPDATE articles SET language_declared = language;
        UPDATE articles SET supported = 1 WHERE analysed_at IS NOT NULL;
        CREATE INDEX articles_language ON articles(language);
    """)


MIGRATIONS: list[tuple[int, str, Callable[[Database], None]]] = [
    (1, "initial schema", _migration_1),
    (2, "full-text search on articles", _migration_2),
    (3, "canonical page URLs and last checks", _migration_3),
    (4, "near-duplicate signatures and clusters", _migration_4),
    (5, "review, reviewers and the registry", _migration_5),
    (6, "deal numbers are never reused", _migration_6),
    (7, "ranker reasons, queued flag and trained models", _migration_7),
    (8, "article languages: declared, identified, supported", _migration_8),
]


# --- helpers --------------------------------------------------------------------------------


def unsupported_reason(language: str | None) -> str:
    """The verdict on the pages of an article in a language dealwatch has no patterns for."""
    return f"unsupported language: {language or 'unknown'}"


def compress(body: bytes) -> bytes:
    return zlib.compress(body, 6)


def decompress(blob: bytes | None) -> bytes:
    return zlib.decompress(blob) if blob else b""


def candidate_key(article_id: int, cand: Candidate) -> str:
    """Identity of a candidate across re-processing: same article, kind, vendor and evidence."""
    basis = "\x1f".join([str(article_id), cand.kind, cand.vendor or "", " ".join(cand.sentence.split())])
    return sha256_hex(basis)[:32]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def candidate_from_row(row: dict[str, Any]) -> Candidate:
    """A stored candidate row (JSON columns decoded) as the record the stages take."""
    fields: dict[str, Any] = {name: row.get(name) for name in Candidate.__dataclass_fields__}
    for name in ("vendors", "deal_types", "reasons"):
        fields[name] = fields[name] if isinstance(fields[name], list) else []
    fields["signals"] = fields["signals"] if isinstance(fields["signals"], dict) else {}
    fields["stage"] = fields["stage"] or "unknown"
    fields["queued"] = bool(row.get("queued", 1))
    return Candidate(**fields)


@dataclass(frozen=True)
class QueueFilter:
    """What the command line asks of the queue (the web UI has more filters: QueueQuery)."""

    status: str | None = "pending"
    kind: str | None = None
    vendor: str | None = None
    country: str | None = None
    language: str | None = None  # the article's (ISO 639-1)
    limit: int | None = 50  # None: all of it
    hidden: bool = False  # also the pending candidates below the queue threshold
    min_score: float | None = None


# --- the store ------------------------------------------------------------------------------


class Store(RegistryStore):
    """A dealwatch database file. Opening it applies any pending migrations."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000, migrate: bool = True):
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every statement outside `transaction()` is durable on its own, and
            # transactions are explicit (BEGIN … COMMIT), never opened behind our back.
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000,
                                   isolation_level=None)
            self.db = Database(conn)
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from None
        self._savepoints = itertools.count(1)
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --

    def schema_version(self) -> int:
        if "schema_migrations" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> list[tuple[int, str]]:
        """Apply every migration newer than the database, each in its own transaction."""
        applied: list[tuple[int, str]] = []
        try:
            if "schema_migrations" not in self.db.table_names():
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
            current = self.schema_version()
            for version, name, step in MIGRATIONS:
                if version <= current:
                    continue
                with self.db.atomic():
                    step(self.db)
                    self.db.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        [version, name, utcnow()],
                    )
                logger.info("applied migration %d: %s", version, name)
                applied.append((version, name))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot migrate database: {exc}") from None
        latest = MIGRATIONS[-1][0]
        if self.schema_version() > latest:
            raise StoreError(
                f"{self.path}: database schema {self.schema_version()} is newer than this "
                f"dealwatch ({latest}); upgrade dealwatch"
            )
        return applied

    # -- sources and runs --

    def sync_sources(self, sources: Iterable[Source]) -> None:
        now = utcnow()
        with self.db.atomic():
            for src in sources:
                self.db.execute(
                    """INSERT INTO sources (id, kind, name, urls, enabled, config, first_seen,
                                            updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                         urls = excluded.urls, enabled = excluded.enabled,
                         config = excluded.config, updated_at = excluded.updated_at""",
                    [src.id, src.kind, src.name, _json(src.urls), int(src.enabled),
                     src.model_dump_json(), now, now],
                )

    def start_run(self, kind: str, sources: list[str] | None = None, pid: int | None = None) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (kind, started_at, sources, pid) VALUES (?, ?, ?, ?)",
            [kind, utcnow(), _json(sources or []), pid],
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, outcome: str, counters: dict[str, Any],
                   message: str | None = None) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, counters = ?, message = ? WHERE id = ?",
            [utcnow(), outcome, _json(counters), message, run_id],
        )

    def abort_stale_runs(self) -> int:
        """Mark runs still "running" as aborted. Call only while holding the run lock: then no
        other run can be live, so such rows belong to processes that were killed."""
        cur = self.db.execute(
            "UPDATE runs SET outcome = 'aborted', finished_at = COALESCE(finished_at, ?), "
            "message = COALESCE(message, 'the process ended before the run finished') "
            "WHERE outcome = 'running'", [utcnow()])
        return cur.rowcount

    def last_run_started(self, kinds: tuple[str, ...] = ("run",)) -> datetime | None:
        marks = ", ".join("?" for _ in kinds)
        row = self.db.execute(f"SELECT MAX(started_at) FROM runs WHERE kind IN ({marks})",
                              list(kinds)).fetchone()
        if not row or not row[0]:
            return None
        return datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit])
        return [decode_row(r) for r in rows]

    # -- pages --

    def known_article_urls(self) -> set[str]:
        """Canonical URLs of every article fetched successfully (as requested, as served, and as
        the article declares itself): a link whose canonical form is here is not fetched again."""
        known = {row[0] for row in self.db.execute(
            "SELECT canonical_url FROM pages WHERE role = 'article' AND status BETWEEN 200 AND 299 "
            "AND error IS NULL AND canonical_url IS NOT NULL").fetchall()}
        # pages.canonical_url is that of the final URL: only a redirected page's requested URL
        # has a canonical form of its own to add.
        known.update(canonical_url(row[0]) for row in self.db.execute(
            "SELECT url FROM pages WHERE role = 'article' AND status BETWEEN 200 AND 299 "
            "AND error IS NULL AND final_url IS NOT NULL AND final_url != url").fetchall())
        known.update(row[0] for row in self.db.execute("SELECT canonical_url FROM articles"))
        return known

    def validators_of(self, url: str) -> dict[str, Any] | None:
        """What the last good fetch of a URL said: etag, last_modified and content_hash, for
        conditional GET and for noticing an unchanged body; None when it has none."""
        row = self.db.execute(
            "SELECT etag, last_modified, content_hash FROM pages WHERE url = ? "
            "AND status BETWEEN 200 AND 299 AND error IS NULL", [url]).fetchone()
        return {"etag": row[0], "last_modified": row[1], "content_hash": row[2]} if row else None

    def record_check(self, url: str, status: int, run_id: int | None = None) -> bool:
        """Note that a stored page was checked (e.g. 304 Not Modified, or the same body again)
        without touching what was stored. False when the URL is not stored."""
        cur = self.db.execute(
            "UPDATE pages SET checked_at = ?, check_status = ?, run_id = COALESCE(?, run_id) "
            "WHERE url = ?", [utcnow(), status, run_id, url])
        return cur.rowcount > 0

    def save_page(self, page: Page, run_id: int | None = None) -> int:
        """Insert or update a page by URL. A changed body is queued for processing again."""
        body = page.body or b""
        now = utcnow()
        content_hash = sha256_hex(body) if body else None
        headers = {k.lower(): v for k, v in page.headers.items()}
        row = {
            "url": page.url,
            "final_url": page.final_url or page.url,
            "canonical_url": canonical_url(page.final_url or page.url),
            "source_id": page.source_id,
            "role": page.role,
            "status": page.status,
            "content_type": headers.get("content-type"),
            "headers": _json(headers),
            "etag": headers.get("etag"),
            "last_modified": headers.get("last-modified"),
            "fetched_at": page.fetched_at or now,
            "content_hash": content_hash,
            "size": len(body),
            "html": compress(body) if body else None,
            "error": page.error,
            "referrer": page.referrer,
            "listed_title": page.listed_title,
            "listed_date": page.listed_date,
            "run_id": run_id,
            "checked_at": page.fetched_at or now,
            "check_status": page.status,
        }
        cols = list(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "url")
        # A page whose body did not change keeps its processing result.
        sql = (
            f"INSERT INTO pages ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
            f"ON CONFLICT(url) DO UPDATE SET {updates}, "
            "process_status = CASE WHEN pages.content_hash IS excluded.content_hash "
            "  THEN pages.process_status ELSE NULL END, "
            "processed_at = CASE WHEN pages.content_hash IS excluded.content_hash "
            "  THEN pages.processed_at ELSE NULL END "
            "RETURNING id"
        )
        cur = self.db.execute(sql, [row[c] for c in cols])
        # fetchall finalises the statement; an unfinished RETURNING keeps its write open.
        return int(cur.fetchall()[0][0])

    # Article pages fetched well and not processed yet.
    _TO_PROCESS = ("role = 'article' AND status BETWEEN 200 AND 299 AND error IS NULL "
                   "AND process_status IS NULL")

    def pages_to_process(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        sql = f"SELECT id FROM pages WHERE {self._TO_PROCESS} ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        ids = [r[0] for r in self.db.execute(sql).fetchall()]
        for page_id in ids:
            row = self.db.execute(
                "SELECT id, url, final_url, source_id, html, headers, listed_title, listed_date "
                "FROM pages WHERE id = ?", [page_id]).fetchone()
            if row is None:
                continue
            yield {"id": row[0], "url": row[1], "final_url": row[2], "source_id": row[3],
                   "body": decompress(row[4]), "headers": json.loads(row[5] or "{}"),
                   "listed_title": row[6], "listed_date": row[7]}

    def count_pages_to_process(self) -> int:
        return int(self.db.execute(
            f"SELECT COUNT(*) FROM pages WHERE {self._TO_PROCESS}").fetchone()[0])

    def mark_page(self, page_id: int, status: str, reason: str | None = None,
                  article_id: int | None = None) -> None:
        self.db.execute(
            "UPDATE pages SET process_status = ?, process_reason = ?, processed_at = ?, "
            "article_id = ? WHERE id = ?",
            [status, reason, utcnow(), article_id, page_id],
        )

    def mark_article_pages(self, article_id: int, status: str, reason: str | None) -> None:
        """Record a processing outcome on every page that gave this article."""
        self.db.execute(
            "UPDATE pages SET process_status = ?, process_reason = ?, processed_at = ? "
            "WHERE article_id = ?", [status, reason, utcnow(), article_id])

    def prune_html(self, days: int) -> int:
        """Drop raw HTML older than the retention window (extracted text stays)."""
        if days <= 0:
            return 0
        cur = self.db.execute(
            "UPDATE pages SET html = NULL WHERE html IS NOT NULL AND process_status IS NOT NULL "
            "AND fetched_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?)", [f"-{int(days)} days"])
        return cur.rowcount

    # -- articles, entities, candidates --

    def article_by_hash(self, text_hash: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM articles WHERE text_hash = ?", [text_hash]))
        return rows[0] if rows else None

    def save_article(self, page_id: int, source_id: str | None, article: Article) -> int:
        """Insert or update an article by canonical URL; returns its id."""
        now = utcnow()
        cur = self.db.execute(
            """INSERT INTO articles (canonical_url, url, page_id, source_id, title, author,
                   published, site, language, language_declared, language_source,
                   language_confidence, text, text_hash, extracted_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(canonical_url) DO UPDATE SET url = excluded.url,
                   page_id = excluded.page_id, title = excluded.title,
                   author = excluded.author, published = excluded.published,
                   site = excluded.site, language = excluded.language,
                   language_declared = excluded.language_declared,
                   language_source = excluded.language_source,
                   language_confidence = excluded.language_confidence, text = excluded.text,
                   text_hash = excluded.text_hash, extracted_at = excluded.extracted_at
               RETURNING id""",
            [article.canonical_url, article.url, page_id, source_id, article.title,
             article.author, article.published, article.site, article.language,
             article.language_declared, article.language_source, article.language_confidence,
             article.text, article.text_hash, now],
        )
        article_id = int(cur.fetchall()[0][0])
        self.db.execute("UPDATE articles SET cluster_id = id WHERE id = ? AND cluster_id IS NULL",
                        [article_id])
        return article_id

    def set_article_language(self, article_id: int, code: str | None, declared: str | None,
                             source: str, confidence: float) -> None:
        """Record an article's language as identification found it (articles stored before
        languages were identified get theirs when next analysed)."""
        self.db.execute(
            "UPDATE articles SET language = ?, language_declared = ?, language_source = ?, "
            "language_confidence = ? WHERE id = ?",
            [code, declared, source, round(confidence, 3), article_id])

    def set_language_verdict(self, article_id: int, language: str | None, supported: bool) -> None:
        """Whether the article was analysed in its language; an article in a language without
        patterns is not analysed, and its pages say so ("unsupported language: zh"), before any
        other note they carry ("too long: …"). Once its language is analysed, the pages go back
        to plain articles."""
        self.db.execute("UPDATE articles SET supported = ?, language = COALESCE(?, language) "
                        "WHERE id = ?", [int(supported), language, article_id])
        rows = self.db.execute(
            "SELECT p.id, p.process_status, p.process_reason, a.language FROM pages p "
            "JOIN articles a ON a.id = p.article_id WHERE p.article_id = ? "
            "AND p.process_status IN ('article', 'unsupported')", [article_id]).fetchall()
        for page_id, status, reason, code in rows:
            rest = reason
            if status == "unsupported" and reason:
                rest = reason.split("; ", 1)[1] if "; " in reason else None
            if supported:
                new = ("article", rest)
            else:
                verdict = unsupported_reason(code)
                new = ("unsupported", f"{verdict}; {rest}" if rest else verdict)
            if new != (status, reason):
                self.db.execute("UPDATE pages SET process_status = ?, process_reason = ? "
                                "WHERE id = ?", [*new, page_id])

    def unsupported_languages(self) -> dict[str, int]:
        """How many articles were not analysed, by language ("unknown": none could be told)."""
        return {str(code or "unknown"): int(n) for code, n in self.db.execute(
            "SELECT language, COUNT(*) FROM articles WHERE supported = 0 GROUP BY language "
            "ORDER BY COUNT(*) DESC, language").fetchall()}

    # -- near-duplicate clusters --

    def save_signature(self, article_id: int, sig: Signature, num_perm: int) -> None:
        self.db.execute(
            "INSERT INTO article_signatures (article_id, num_perm, shingles, signature, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(article_id) DO UPDATE SET"
            " num_perm = excluded.num_perm, shingles = excluded.shingles,"
            " signature = excluded.signature, created_at = excluded.created_at",
            [article_id, num_perm, sig.shingles, sig.to_bytes(), utcnow()])

    def recent_signatures(self, days: int, num_perm: int
                          ) -> Iterator[tuple[int, int, Signature]]:
        """(article id, cluster id, signature) of articles extracted in the last `days` days."""
        rows = self.db.execute(
            "SELECT s.article_id, a.cluster_id, s.signature, s.shingles FROM article_signatures s "
            "JOIN articles a ON a.id = s.article_id WHERE s.num_perm = ? "
            "AND a.extracted_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) ORDER BY s.article_id",
            [num_perm, f"-{int(days)} days"])
        for article_id, cluster_id, blob, shingles in rows:
            yield article_id, cluster_id or article_id, Signature.from_bytes(blob, shingles)

    def set_cluster(self, article_id: int, cluster_id: int, merged: Iterable[int] = ()) -> None:
        """Put an article in a cluster; clusters it joined together are renamed to cluster_id."""
        self.db.execute("UPDATE articles SET cluster_id = ? WHERE id = ?", [cluster_id, article_id])
        for old in merged:
            self.db.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?",
                            [cluster_id, old])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction (a savepoint when nested): all of it is written, or none of it.

        The outermost one begins IMMEDIATE: it takes the write lock up front, so two writers
        (two reviewers, or a reviewer and the nightly run) queue on the busy timeout instead of
        one failing half way with "database is locked" when it upgrades a read lock.
        """
        conn = self.db.conn
        if conn.in_transaction:
            name = f"sp{next(self._savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: the database is busy ({exc}): another process has "
                             "been writing for longer than the busy timeout; try again") from None
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read of several queries, without taking the write lock (WAL readers
        never wait for writers)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def save_analysis(self, article_id: int, entities: list[Entity], candidates: list[Candidate],
                      analyser: str) -> dict[str, int]:
        """Replace an article's entities and candidates; reviewed candidates are never lost.

        A candidate found again keeps its id and review status (its fields are refreshed while
        it is pending). A pending candidate no longer found is removed; a reviewed one stays.
        """
        now = utcnow()
        self.db.execute("DELETE FROM entities WHERE article_id = ?", [article_id])
        if entities:
            self.db.conn.executemany(
                'INSERT OR IGNORE INTO entities (article_id, label, ent_id, text, start, "end") '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(article_id, e.label, e.id, e.text, e.start, e.end) for e in entities],
            )
        existing = {row[0] for row in self.db.execute(
            "SELECT key FROM candidates WHERE article_id = ?", [article_id]).fetchall()}
        keys: list[str] = []
        new = 0
        for cand in candidates:
            key = candidate_key(article_id, cand)
            if key in keys:
                continue
            keys.append(key)
            exists = key in existing
            self.db.execute(
                """INSERT INTO candidates (article_id, key, kind, vendor, vendors, country,
                       counterpart, counterpart_type, deal_type, deal_types, stage, value,
                       currency, year, score, sentence, start, "end", signals, reasons, queued,
                       created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(key) DO UPDATE SET kind = excluded.kind,
                       vendor = excluded.vendor, vendors = excluded.vendors,
                       country = excluded.country, counterpart = excluded.counterpart,
                       counterpart_type = excluded.counterpart_type,
                       deal_type = excluded.deal_type, deal_types = excluded.deal_types,
                       stage = excluded.stage, value = excluded.value,
                       currency = excluded.currency, year = excluded.year,
                       score = excluded.score, start = excluded.start, "end" = excluded."end",
                       signals = excluded.signals, reasons = excluded.reasons,
                       queued = excluded.queued, updated_at = excluded.updated_at
                   WHERE candidates.status = 'pending'""",
                [article_id, key, cand.kind, cand.vendor, _json(cand.vendors), cand.country,
                 cand.counterpart, cand.counterpart_type, cand.deal_type, _json(cand.deal_types),
                 cand.stage, cand.value, cand.currency, cand.year, round(cand.score, 4),
                 cand.sentence, cand.start, cand.end, _json(cand.signals), _json(cand.reasons),
                 int(cand.queued), now, now],
            )
            new += 0 if exists else 1
        placeholders = ", ".join("?" for _ in keys)
        stale_sql = ("DELETE FROM candidates WHERE article_id = ? AND status = 'pending' "
                     "AND id NOT IN (SELECT candidate_id FROM reviews)")
        if keys:
            stale_sql += f" AND key NOT IN ({placeholders})"
        removed = self.db.execute(stale_sql, [article_id, *keys]).rowcount
        self.db.execute("UPDATE articles SET analysed_at = ?, analyser = ? WHERE id = ?",
                        [now, analyser, article_id])
        return {"candidates_new": new, "candidates_removed": removed}

    def articles_for_reanalysis(self) -> Iterator[dict[str, Any]]:
        """Every stored article, one at a time (memory stays flat however many there are)."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY id").fetchall()]
        for article_id in ids:
            rows = list(self.db.query("SELECT * FROM articles WHERE id = ?", [article_id]))
            if rows:
                yield rows[0]

    # -- ranking --

    def stored_candidates(self, batch_size: int = 500) -> Iterator[tuple[int, Candidate]]:
        """Every stored candidate as a record (id order, read in batches: memory stays flat)."""
        last = 0
        while True:
            rows = [decode_row(r) for r in self.db.query(
                "SELECT * FROM candidates WHERE id > ? ORDER BY id LIMIT ?", [last, batch_size])]
            if not rows:
                return
            for row in rows:
                yield int(row["id"]), candidate_from_row(row)
            last = int(rows[-1]["id"])

    def decided_candidates(self) -> Iterator[tuple[Candidate, str, str | None]]:
        """Confirmed and rejected candidates as reviewers left them: (candidate, status, reason)."""
        for row in self.db.query("SELECT * FROM candidates WHERE status IN ('confirmed', 'rejected') "
                                 "ORDER BY id"):
            row = decode_row(row)
            yield candidate_from_row(row), row["status"], row.get("reason")

    def set_scores(self, scores: Iterable[tuple[int, Candidate]]) -> int:
        """Store new scores, reasons, queued flags and signals; how many candidates changed.
        A score is no reviewer's edit: the candidate's version stays as it is."""
        changed = 0
        for candidate_id, cand in scores:
            values = [round(cand.score, 4), _json(cand.reasons), int(cand.queued), _json(cand.signals)]
            changed += self.db.execute(
                "UPDATE candidates SET score = ?, reasons = ?, queued = ?, signals = ? "
                "WHERE id = ? AND NOT (score = ? AND reasons = ? AND queued = ? AND signals IS ?)",
                [*values, candidate_id, *values]).rowcount
        return changed

    def record_ranker(self, path: str, summary: dict[str, Any]) -> int:
        """Note a model trained for this database: the newest is `process`'s default ranker."""
        cur = self.db.execute("INSERT INTO rankers (path, created_at, summary) VALUES (?, ?, ?)",
                              [path, utcnow(), _json(summary)])
        return int(cur.lastrowid or 0)

    def newest_ranker(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM rankers ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    # -- reading the queue --

    def queue(self, flt: QueueFilter | None = None) -> list[dict[str, Any]]:
        """Candidates, best first; the copies of a syndicated story (one near-duplicate cluster)
        show as one entry carrying every copy in `copies`. Pages through `queue_page`."""
        flt = flt or QueueFilter()
        query = QueueQuery(status=flt.status, kind=flt.kind, vendor=flt.vendor,
                           country=flt.country, language=flt.language, hidden=flt.hidden,
                           min_score=flt.min_score)
        page_size = flt.limit or 500
        rows: list[dict[str, Any]] = []
        after: tuple[float, int] | None = None
        while True:
            page = self.queue_page(query, page_size, after)
            rows += page
            if flt.limit or len(page) < page_size:
                break
            after = (page[-1]["score"], page[-1]["id"])
        return self.attach_copies(rows)

    def count_hidden(self) -> int:
        """Pending candidates below the queue threshold: kept, but out of the default view."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM candidates WHERE status = 'pending' AND queued = 0").fetchone()[0])

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM [{table}]").fetchone()[0])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("sources", "runs", "pages", "articles", "entities", "candidates", "reviews",
                      "deals", "exports"):
            out[table] = int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for status in CANDIDATE_STATUSES:
            out[f"candidates_{status}"] = int(self.db.execute(
                "SELECT COUNT(*) FROM candidates WHERE status = ?", [status]).fetchone()[0])
        return out
