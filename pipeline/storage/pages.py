"""Fetched pages: what the crawl stored, their validators, and which wait to be processed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from models.records import FetchedPage, Page
from pipeline.storage.database import (
    Database,
    compress,
    days_ago,
    decompress,
    dump_json,
    marks,
    sha256_hex,
    utcnow,
)
from pipeline.urls import canonical_url


class Pages:
    """The pages table: one row per fetched URL, its body compressed, its processing outcome."""

    def __init__(self, database: Database):
        self.db = database

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
            "headers": dump_json(headers),
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
            f"INSERT INTO pages ({', '.join(cols)}) VALUES ({marks(cols)}) "
            f"ON CONFLICT(url) DO UPDATE SET {updates}, "
            "process_status = CASE WHEN pages.content_hash IS NOT DISTINCT FROM excluded.content_hash "
            "  THEN pages.process_status ELSE NULL END, "
            "processed_at = CASE WHEN pages.content_hash IS NOT DISTINCT FROM excluded.content_hash "
            "  THEN pages.processed_at ELSE NULL END "
            "RETURNING id"
        )
        cur = self.db.execute(sql, [row[c] for c in cols])
        # fetchall finalises the statement; an unfinished RETURNING keeps its write open.
        return int(cur.fetchall()[0][0])

    # Article pages fetched well and not processed yet.
    _TO_PROCESS = ("role = 'article' AND status BETWEEN 200 AND 299 AND error IS NULL "
                   "AND process_status IS NULL")


    def pages_to_process(self, limit: int | None = None) -> Iterator[FetchedPage]:
        sql = f"SELECT id FROM pages WHERE {self._TO_PROCESS} ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        ids = [r[0] for r in self.db.execute(sql).fetchall()]
        for page_id in ids:
            page = self._fetched_page(page_id)
            if page is not None:
                yield page

    def claim_pages_to_process(self, limit: int) -> list[FetchedPage]:
        """Up to `limit` pages waiting to be processed that no other transaction holds, locked
        for the caller's transaction (PostgreSQL only: `FOR UPDATE SKIP LOCKED`). The row locks
        are the claim: they last until the transaction ends, however it ends (a worker killed
        mid-batch frees its pages when its connection closes), and another worker's claim
        passes over them instead of waiting."""
        ids = [r[0] for r in self.db.execute(
            f"SELECT id FROM pages WHERE {self._TO_PROCESS} ORDER BY id LIMIT ? "
            "FOR UPDATE SKIP LOCKED", [int(limit)]).fetchall()]
        return [page for page in map(self._fetched_page, ids) if page is not None]

    def _fetched_page(self, page_id: int) -> FetchedPage | None:
        row = self.db.execute(
            "SELECT id, url, final_url, source_id, html, headers, listed_title, listed_date "
            "FROM pages WHERE id = ?", [page_id]).fetchone()
        if row is None:
            return None
        return FetchedPage(id=row[0], url=row[1], final_url=row[2], source_id=row[3],
                           body=decompress(row[4]), headers=json.loads(row[5] or "{}"),
                           listed_title=row[6], listed_date=row[7])

    def count_pages_to_process(self) -> int:
        return int(self.db.execute(
            f"SELECT COUNT(*) FROM pages WHERE {self._TO_PROCESS}").fetchone()[0])

    def count_pages_to_process_by_source(self) -> dict[str | None, int]:
        """The pages waiting to be processed, counted per source id (None: pages stored without
        a source), in one query."""
        return {row[0]: int(row[1]) for row in self.db.execute(
            f"SELECT source_id, COUNT(*) FROM pages WHERE {self._TO_PROCESS} GROUP BY source_id")}

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
            "AND fetched_at < ?", [days_ago(days)])
        return cur.rowcount
