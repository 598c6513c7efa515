"""Candidates: the review queue's reads, one candidate and its copies, scores and rankers.

What reviewing reads leaves as records: `QueueEntry` (a candidate with its article) and
`StoryCopy` (one copy of a syndicated story).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from models.records import Candidate
from models.registry import QueueEntry, StoryCopy, record_of
from pipeline.storage.database import (
    CANDIDATE_STATUSES,
    Database,
    candidate_from_row,
    decode_row,
    dump_json,
    dump_value,
    marks,
    utcnow,
)
from pipeline.storage.queue import (
    Cursor,
    QueueCounts,
    QueueQuery,
    Walk,
    cursor_of,
    queue_walks,
    queue_where,
    sort_entries,
)


class Candidates:
    """The candidates table as reviewing and ranking read and write it."""

    def __init__(self, database: Database):
        self.db = database

    def queue(self, query: QueueQuery | None = None) -> list[QueueEntry]:
        """Candidates in the query's order (best first by default); the copies of a syndicated
        story (one near-duplicate cluster) show as one entry carrying every copy in `copies`.
        Pages through `queue_page`."""
        query = query or QueueQuery()
        page_size = query.limit or 500
        rows: list[QueueEntry] = []
        after: Cursor | None = None
        while True:
            page = self.queue_page(query, page_size, after)
            rows += page
            if query.limit or len(page) < page_size:
                break
            after = cursor_of(page[-1], query)
        return self.attach_copies(rows)

    def queue_page(self, query: QueueQuery, limit: int, after: Cursor | None = None,
                   before: Cursor | None = None) -> list[QueueEntry]:
        """One page of the review queue in the query's order: queue entries after (or before) a
        cursor, (the sort column's value, id); (score, id) in the default order, best first.
        Copies of one story (cluster_group) show as their best-scored one."""
        backwards = after is None and before is not None
        parts = self._parts(query)
        rows = [row for part, queued in parts
                for row in self._page_part(part, queued, limit, after, before)]
        if len(parts) > 1:  # several walks, merged
            rows = sort_entries(rows, query)
            rows = rows[-limit:] if backwards else rows[:limit]
        return rows

    @staticmethod
    def _parts(query: QueueQuery) -> list[tuple[QueueQuery, int]]:
        """The view as (one status, one queued flag) parts, each along its own index, so that
        no page sorts: the default view (pending, queued) is one; every status, or the hidden
        candidates too, are several pages merged."""
        statuses = CANDIDATE_STATUSES if query.status is None else (query.status,)
        return [(replace(query, status=status), queued) for status in statuses
                for queued in ((1,) if status == "pending" and not query.hidden else (1, 0))]

    def _page_part(self, part: QueueQuery, queued: int, limit: int, after: Cursor | None,
                   before: Cursor | None) -> list[QueueEntry]:
        """A page of one part, its walks taken in turn until it is full."""
        rows: list[QueueEntry] = []
        for walk in queue_walks(part, "c", after, before):
            sql, params = self._queue_sql(
                part, queued, "c.*, a.url, a.canonical_url, a.title, a.site, a.source_id, "
                "a.language, a.cluster_id", walk)
            rows += [record_of(QueueEntry, decode_row(r)) for r in self.db.query(
                f"{sql} ORDER BY {walk.order} LIMIT ?", [*params, limit - len(rows)])]
            if len(rows) == limit:
                break
        return rows[::-1] if after is None and before is not None else rows

    def queue_count(self, query: QueueQuery, before: Cursor | None = None) -> int:
        """How many queue entries (copies of a story count once) there are, or, with a cursor,
        how many come before it: the page starting there is numbered from this + 1. Each copy
        is checked against its story's others, so this reads every entry it counts: the web
        page keeps the whole count for a while (review.web.queue)."""
        total = 0
        for part, queued in self._parts(query):
            for walk in queue_walks(part, "c", before=before) if before else [Walk("TRUE", [], "")]:
                sql, params = self._queue_sql(part, queued, "COUNT(*)", walk)
                total += int(self.db.execute(sql, params).fetchone()[0])
        return total

    def _queue_sql(self, part: QueueQuery, queued: int, columns: str, walk: Walk
                   ) -> tuple[str, list[Any]]:
        """The SELECT of these columns for one part of the queue (one status, one queued flag),
        without ORDER and LIMIT: candidates under its filters and the walk's condition, each
        story's best copy only."""
        dialect = self.db.dialect
        where, params = queue_where(replace(part, hidden=True), "c", "a", dialect)
        lead_where, lead_params = queue_where(part, "c2", "a2", dialect, per_row=True)
        sql = (
            f"SELECT {columns} FROM candidates c JOIN articles a ON a.id = c.article_id "
            "WHERE " + " AND ".join([*where, "c.queued = ?", walk.where]) +
            # (SQLite: CROSS JOIN, from the story's articles (cluster index) to their candidates)
            f" AND NOT EXISTS (SELECT 1 FROM articles a2 {dialect.ordered_join} candidates c2"
            " ON c2.article_id = a2.id"
            " WHERE a2.cluster_id = a.cluster_id AND c2.kind = c.kind"
            " AND COALESCE(c2.vendor, '') = COALESCE(c.vendor, '')"
            " AND COALESCE(c2.country, '') = COALESCE(c.country, '') AND c2.status = c.status"
            # (unary +: no score index here either; walking every row scored higher made a
            # count quadratic)
            " AND (+c2.score > c.score OR (+c2.score = c.score AND c2.id < c.id))"
            + "".join(f" AND {w}" for w in lead_where) + ")")
        return sql, [*params, queued, *walk.params, *lead_params]

    def cluster_copies(self, cluster_ids: Iterable[int]) -> dict[int, list[StoryCopy]]:
        """Every copy of each cluster's story: its articles and the pages that repeated one of
        them word for word, oldest first."""
        ids = sorted(set(cluster_ids))
        out: dict[int, list[StoryCopy]] = {cid: [] for cid in ids}
        if not ids:
            return out
        rows = self.db.query(
            f"""SELECT a.cluster_id, a.id AS article_id, a.url, a.site, a.title, a.published,
                       'article' AS copy
                FROM articles a WHERE a.cluster_id IN ({marks(ids)})
                UNION ALL
                SELECT a.cluster_id, a.id, COALESCE(p.final_url, p.url), NULL, NULL, NULL,
                       'exact duplicate'
                FROM pages p JOIN articles a ON a.id = p.article_id
                WHERE p.process_status = 'duplicate' AND a.cluster_id IN ({marks(ids)})
                ORDER BY 1, 2, 7""", [*ids, *ids])
        for row in rows:
            out[row.pop("cluster_id")].append(record_of(StoryCopy, row))
        return out

    def attach_copies(self, entries: list[QueueEntry]) -> list[QueueEntry]:
        """The entries (of the queue, or candidates), each given `copies`: every copy of its
        story, none without a cluster. Changed in place."""
        copies = self.cluster_copies(e.cluster_id for e in entries if e.cluster_id)
        for entry in entries:
            entry.copies = copies.get(entry.cluster_id, []) if entry.cluster_id else []
        return entries

    def queue_counts(self, query: QueueQuery) -> QueueCounts:
        """Candidates per status under the queue's filters (all but the status filter), and the
        pending ones the view hides below the threshold: one grouped query, which an index of
        (status, queued, …) answers alone when no filter is on the article."""
        where, params = queue_where(replace(query, status=None, hidden=True), "c", "a",
                                    self.db.dialect)
        on_article = query.source or query.language or query.date_from or query.date_to
        join = " JOIN articles a ON a.id = c.article_id" if on_article else ""
        rows = self.db.execute(
            f"SELECT c.status, COUNT(*), "
            "COUNT(*) FILTER (WHERE c.status = 'pending' AND c.queued = 0)"
            f" FROM candidates c{join}"
            + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY c.status",
            params).fetchall()
        hidden = 0 if query.hidden else sum(int(below) for _, _, below in rows)
        statuses = {status: int(n) - (int(below) if not query.hidden else 0)
                    for status, n, below in rows}
        return QueueCounts({s: n for s, n in statuses.items() if n}, hidden)

    def queue_status_counts(self, query: QueueQuery) -> dict[str, int]:
        """Candidates per status under the queue's filters (all but the status filter)."""
        return self.queue_counts(query).statuses

    def queue_version(self) -> tuple[Any, ...]:
        """What moves whenever the queue's counts may have: the last review (every decision, edit
        and undo writes one, whichever process took it), the last candidate, and the last run
        and whether it finished (processing and rescoring). Three lookups of a largest id."""
        return tuple(self.db.execute(
            "SELECT (SELECT MAX(id) FROM reviews), (SELECT MAX(id) FROM candidates), "
            "(SELECT MAX(id) FROM runs), "
            "(SELECT finished_at FROM runs ORDER BY id DESC LIMIT 1)").fetchone())

    def count_hidden(self) -> int:
        """Pending candidates below the queue threshold: kept, but out of the default view."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM candidates WHERE status = 'pending' AND queued = 0").fetchone()[0])

    def candidate(self, candidate_id: int) -> QueueEntry | None:
        """One candidate with its article (its text too)."""
        rows = list(self.db.query(
            "SELECT c.*, a.url, a.canonical_url, a.title, a.published, a.site, a.author, "
            "a.language, a.language_declared, a.language_source, a.cluster_id, a.extracted_at, "
            "a.text AS article_text "
            "FROM candidates c JOIN articles a ON a.id = c.article_id WHERE c.id = ?",
            [candidate_id]))
        return record_of(QueueEntry, decode_row(rows[0])) if rows else None

    def cluster_group(self, candidate: QueueEntry) -> list[int]:
        """The ids of the candidate and its copies: same near-duplicate cluster, kind, vendor and
        country, with the same status — the queue shows them as one, and they are decided as one."""
        rows = self.db.execute(
            "SELECT c.id FROM candidates c "
            "JOIN articles a ON a.id = c.article_id "
            "WHERE a.cluster_id IS NOT DISTINCT FROM ? AND c.kind = ? AND COALESCE(c.vendor, '') = ? "
            "AND COALESCE(c.country, '') = ? AND c.status = ? ORDER BY c.id",
            [candidate.cluster_id, candidate.kind, candidate.vendor or "",
             candidate.country or "", candidate.status])
        return [int(r[0]) for r in rows]

    def set_candidate(self, candidate_id: int, expected_version: int,
                      values: dict[str, Any]) -> bool:
        """Write fields of a candidate if nobody changed it since `expected_version`; the version
        goes up by one. False when someone else got there first."""
        cols = ", ".join(f"{name} = ?" for name in values)
        cur = self.db.execute(
            f"UPDATE candidates SET {cols}, version = version + 1, updated_at = ? "
            "WHERE id = ? AND version = ?",
            [*(dump_value(v) for v in values.values()), utcnow(), candidate_id, expected_version])
        return cur.rowcount == 1

    def candidate_countries(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT country FROM candidates WHERE country IS NOT NULL ORDER BY country")]

    def candidate_languages(self) -> list[str]:
        """The languages of the articles that gave candidates."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT a.language FROM articles a WHERE a.language IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM candidates c WHERE c.article_id = a.id) ORDER BY 1")]

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
            values = [round(cand.score, 4), dump_json(cand.reasons), int(cand.queued),
                      dump_json(cand.signals)]
            changed += self.db.execute(
                "UPDATE candidates SET score = ?, reasons = ?, queued = ?, signals = ? "
                "WHERE id = ? AND NOT (score = ? AND reasons = ? AND queued = ? "
                "AND signals IS NOT DISTINCT FROM ?)",
                [*values, candidate_id, *values]).rowcount
        return changed

    def record_ranker(self, path: str, summary: dict[str, Any]) -> int:
        """Note a model trained for this database: the newest is `process`'s default ranker."""
        return self.db.insert_row("rankers", {"path": path, "created_at": utcnow(),
                                              "summary": dump_json(summary)})

    def newest_ranker(self) -> str | None:
        """The path of the model trained for this database most recently, if any."""
        row = self.db.execute("SELECT path FROM rankers ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None
