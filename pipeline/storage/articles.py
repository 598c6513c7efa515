"""Articles: extracted texts, their languages, near-duplicate clusters, entities and analyses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.records import Article, Candidate, Entity, StoredArticle
from models.registry import record_of
from pipeline.storage.database import (
    CLUSTER_LOCK,
    FLOOR_LOCKS,
    FLOOR_MASK,
    Database,
    candidate_key,
    days_ago,
    dump_json,
    marks,
    unsupported_reason,
    utcnow,
)


class Articles:
    """The articles, article_signatures and entities tables, and an article's candidates as analysed."""

    def __init__(self, database: Database):
        self.db = database

    def article_by_hash(self, text_hash: str) -> StoredArticle | None:
        rows = list(self.db.query("SELECT * FROM articles WHERE text_hash = ?", [text_hash]))
        return record_of(StoredArticle, rows[0]) if rows else None

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
        self._date_candidates(article_id)  # extracted again, it may have another date
        return article_id

    def _date_candidates(self, article_id: int) -> None:
        """Give the article's candidates its date: the queue's date order walks an index of the
        candidates (schema migration 15), which cannot reach into the article."""
        self.db.execute(
            "UPDATE candidates SET published = (SELECT published FROM articles WHERE id = ?) "
            "WHERE article_id = ? "
            "AND published IS DISTINCT FROM (SELECT published FROM articles WHERE id = ?)",
            [article_id, article_id, article_id])

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
        """How many articles were not analysed, by language ("unknown": none could be told),
        most first; among equals "unknown" first (on PostgreSQL too, whose NULLs sort last)."""
        return {str(code or "unknown"): int(n) for code, n in self.db.execute(
            "SELECT language, COUNT(*) FROM articles WHERE supported = 0 GROUP BY language "
            "ORDER BY COUNT(*) DESC, language IS NOT NULL, language").fetchall()}

    def save_signature(self, article_id: int, signature: bytes, shingles: int, num_perm: int) -> None:
        """Keep an article's MinHash signature (its bytes, and how many shingles made it)."""
        self.db.execute(
            "INSERT INTO article_signatures (article_id, num_perm, shingles, signature, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(article_id) DO UPDATE SET"
            " num_perm = excluded.num_perm, shingles = excluded.shingles,"
            " signature = excluded.signature, created_at = excluded.created_at",
            [article_id, num_perm, shingles, signature, utcnow()])

    def recent_signatures(self, days: int, num_perm: int, after: int = 0
                          ) -> Iterator[tuple[int, int, bytes, int]]:
        """(article id, cluster id, signature bytes, shingles) of the articles extracted in the last
        `days` days (and numbered past `after`)."""
        rows = self.db.execute(
            "SELECT s.article_id, a.cluster_id, s.signature, s.shingles FROM article_signatures s "
            "JOIN articles a ON a.id = s.article_id WHERE s.num_perm = ? "
            "AND a.extracted_at >= ? AND s.article_id > ? ORDER BY s.article_id",
            [num_perm, days_ago(days), after])
        for article_id, cluster_id, blob, shingles in rows:
            yield article_id, cluster_id or article_id, blob, shingles

    def clusters_of(self, article_ids: Iterable[int]) -> dict[int, int]:
        """The cluster each of these articles is in now (another worker may have merged it)."""
        ids = list(article_ids)
        return {int(row[0]): int(row[1] or row[0]) for row in self.db.execute(
            f"SELECT id, cluster_id FROM articles WHERE {self.db.dialect.in_list('id')}",
            [self.db.dialect.list_param(ids)]).fetchall()} if ids else {}

    # Clustering across processing workers (PostgreSQL; docs/scaling.md "Processing workers").
    # Advisory locks (their keys: storage.database): one worker clusters at a time, and each
    # batch in flight shows the articles it may still add.

    def lock_clustering(self) -> None:
        """Cluster alone until the transaction ends (its commit publishes the clusters)."""
        self.db.execute("SELECT pg_advisory_xact_lock(?)", [CLUSTER_LOCK])

    def hold_batch_floor(self) -> None:
        """Show, until the transaction ends, that every article it adds is numbered past the
        largest id visible now (ids come from one sequence), so that a worker reading new
        signatures knows which ids may still appear below it (`batch_floor`)."""
        floor = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM articles").fetchone()[0])
        self.db.execute("SELECT pg_advisory_xact_lock_shared(?)", [FLOOR_LOCKS | floor])

    def batch_floor(self) -> int | None:
        """The lowest floor of the other batches in flight on this database (None: none is):
        articles numbered above it may still be committed by them."""
        row = self.db.execute(
            "SELECT MIN(((l.classid::bigint << 32) | l.objid::bigint) & ?) FROM pg_locks l "
            "JOIN pg_database d ON d.oid = l.database AND d.datname = current_database() "
            "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted "
            "AND l.pid <> pg_backend_pid() "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) & ? = ?",
            [FLOOR_MASK, ~FLOOR_MASK, FLOOR_LOCKS]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def set_cluster(self, article_id: int, cluster_id: int, merged: Iterable[int] = ()) -> None:
        """Put an article in a cluster; clusters it joined together are renamed to cluster_id."""
        self.db.execute("UPDATE articles SET cluster_id = ? WHERE id = ?", [cluster_id, article_id])
        for old in merged:
            self.db.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?",
                            [cluster_id, old])

    def save_analysis(self, article_id: int, entities: list[Entity], candidates: list[Candidate],
                      analyser: str) -> dict[str, int]:
        """Replace an article's entities and candidates; reviewed candidates are never lost.

        A candidate found again keeps its id and review status (its fields are refreshed while
        no reviewer has touched it: an edit leaves it pending, and its fields are the
        reviewer's). A pending candidate no longer found is removed; a reviewed one stays.
        """
        now = utcnow()
        self.db.execute("DELETE FROM entities WHERE article_id = ?", [article_id])
        if entities:
            self.db.executemany(
                'INSERT INTO entities (article_id, label, ent_id, text, start, "end") '
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
                   WHERE candidates.status = 'pending' AND NOT EXISTS
                       (SELECT 1 FROM reviews r WHERE r.candidate_id = candidates.id)""",
                [article_id, key, cand.kind, cand.vendor, dump_json(cand.vendors), cand.country,
                 cand.counterpart, cand.counterpart_type, cand.deal_type, dump_json(cand.deal_types),
                 cand.stage, cand.value, cand.currency, cand.year, round(cand.score, 4),
                 cand.sentence, cand.start, cand.end, dump_json(cand.signals), dump_json(cand.reasons),
                 int(cand.queued), now, now],
            )
            new += 0 if exists else 1
        stale_sql = ("DELETE FROM candidates WHERE article_id = ? AND status = 'pending' "
                     "AND id NOT IN (SELECT candidate_id FROM reviews)")
        if keys:
            stale_sql += f" AND key NOT IN ({marks(keys)})"
        removed = self.db.execute(stale_sql, [article_id, *keys]).rowcount
        self._date_candidates(article_id)
        self.db.execute("UPDATE articles SET analysed_at = ?, analyser = ? WHERE id = ?",
                        [now, analyser, article_id])
        return {"candidates_new": new, "candidates_removed": removed}

    def articles_for_reanalysis(self) -> Iterator[StoredArticle]:
        """Every stored article, one at a time (memory stays flat however many there are)."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY id").fetchall()]
        for article_id in ids:
            rows = list(self.db.query("SELECT * FROM articles WHERE id = ?", [article_id]))
            if rows:
                yield record_of(StoredArticle, rows[0])

    def entities_of(self, article_id: int) -> list[Entity]:
        """The entities tagged in an article, in text order (those on one span by label: the
        page shows the later one's, so the order is written out, not left to the engine)."""
        return [record_of(Entity, row) for row in self.db.query(
            'SELECT text, label, start, "end", ent_id AS id FROM entities WHERE article_id = ? '
            'ORDER BY start, "end", label', [article_id])]
