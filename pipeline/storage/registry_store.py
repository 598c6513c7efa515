"""The store's review and registry tables: reviewers, sessions, decisions, deals, exports, pushes.

A mixin of `pipeline.storage.store.Store`: the SQL for reviewing lives here so store.py stays readable.
Pure decisions (what a confirm does to the registry) live in pipeline/review.py and
pipeline/registry.py; this module only reads and writes rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlite_utils import Database

DEAL_FIELDS = ("vendor", "vendors", "country", "counterpart", "counterpart_type", "deal_type",
               "deal_types", "stage", "value", "currency", "year")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, list | dict) else value


JSON_COLUMNS = ("vendors", "deal_types", "signals", "headers", "counters", "edits", "sources",
                "urls", "previous", "reasons")


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Turn the JSON text columns of a row back into lists and dicts."""
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            with contextlib.suppress(json.JSONDecodeError):
                row[name] = json.loads(row[name])
    if isinstance(row.get("queued"), int):
        row["queued"] = bool(row["queued"])
    return row


class RegistryStore:
    """Rows of reviewing and of the registry (mixed into Store)."""

    db: Database

    # -- reviewers and sessions --

    def add_user(self, name: str, password_hash: str) -> int:
        cur = self.db.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)",
            [name, password_hash, utcnow()])
        return int(cur.lastrowid or 0)

    def user(self, name: str | None = None, user_id: int | None = None) -> dict[str, Any] | None:
        if user_id is not None:
            rows = list(self.db.query("SELECT * FROM users WHERE id = ?", [user_id]))
        else:
            rows = list(self.db.query("SELECT * FROM users WHERE name = ?", [name]))
        return rows[0] if rows else None

    def users(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT id, name, created_at, disabled FROM users ORDER BY name"))

    # The database is meant to be read by anyone with Datasette: it keeps only a hash of each
    # session token, so reading it does not let anyone act as a logged-in reviewer.

    def create_session(self, user_id: int, ttl_seconds: float) -> dict[str, Any]:
        """A new session; its `id` (the token for the cookie) is stored only as a hash."""
        token = secrets.token_urlsafe(32)
        session = {"id": _token_hash(token), "user_id": user_id,
                   "csrf_token": secrets.token_urlsafe(32), "created_at": utcnow(),
                   "expires_at": _later(ttl_seconds)}
        self.db.execute("DELETE FROM sessions WHERE expires_at <= ?", [utcnow()])
        self.db.execute("INSERT INTO sessions (id, user_id, csrf_token, created_at, expires_at) "
                        "VALUES (:id, :user_id, :csrf_token, :created_at, :expires_at)", session)
        return {**session, "id": token}

    def session(self, token: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT s.*, u.name AS user_name FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ? AND s.expires_at > ? AND u.disabled = 0",
            [_token_hash(token), utcnow()]))
        return {**rows[0], "id": token} if rows else None

    def delete_session(self, token: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ? OR expires_at <= ?",
                        [_token_hash(token), utcnow()])

    def record_login_failure(self, name: str, address: str) -> None:
        # failures older than a day count for nothing any more
        self.db.execute("DELETE FROM login_failures WHERE at < ?", [_later(-86400)])
        self.db.execute("INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                        [name, address, utcnow()])

    def login_failures(self, name: str, address: str, window_seconds: float) -> int:
        since = (datetime.now(UTC) - timedelta(seconds=window_seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        row = self.db.execute(
            "SELECT COUNT(*) FROM login_failures WHERE (name = ? OR address = ?) AND at >= ?",
            [name, address, since]).fetchone()
        return int(row[0])

    def clear_login_failures(self, name: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE name = ?", [name])

    # -- candidates under review --

    def candidate(self, candidate_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT c.*, a.url, a.canonical_url, a.title, a.published, a.site, a.author, "
            "a.language, a.language_declared, a.language_source, a.cluster_id, a.extracted_at, "
            "a.text AS article_text "
            "FROM candidates c JOIN articles a ON a.id = c.article_id WHERE c.id = ?",
            [candidate_id]))
        return decode_row(rows[0]) if rows else None

    def cluster_group(self, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        """The candidate and its copies: same near-duplicate cluster, kind, vendor and country,
        with the same status — the queue shows them as one, and they are decided as one."""
        rows = self.db.query(
            "SELECT c.id, c.version, c.status FROM candidates c "
            "JOIN articles a ON a.id = c.article_id "
            "WHERE a.cluster_id IS ? AND c.kind = ? AND COALESCE(c.vendor, '') = ? "
            "AND COALESCE(c.country, '') = ? AND c.status = ? ORDER BY c.id",
            [candidate["cluster_id"], candidate["kind"], candidate["vendor"] or "",
             candidate["country"] or "", candidate["status"]])
        return list(rows)

    def entities_of(self, article_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            'SELECT label, ent_id, text, start, "end" FROM entities WHERE article_id = ? '
            "ORDER BY start", [article_id]))

    def set_candidate(self, candidate_id: int, expected_version: int,
                      values: dict[str, Any]) -> bool:
        """Write fields of a candidate if nobody changed it since `expected_version`; the version
        goes up by one. False when someone else got there first."""
        cols = ", ".join(f"{name} = ?" for name in values)
        cur = self.db.execute(
            f"UPDATE candidates SET {cols}, version = version + 1, updated_at = ? "
            "WHERE id = ? AND version = ?",
            [*(_dump(v) for v in values.values()), utcnow(), candidate_id, expected_version])
        return cur.rowcount == 1

    def add_review(self, row: dict[str, Any]) -> int:
        row = {k: _dump(v) for k, v in row.items()}
        row.setdefault("decided_at", utcnow())
        cols = list(row)
        cur = self.db.execute(
            f"INSERT INTO reviews ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols])
        return int(cur.lastrowid or 0)

    def reviews_of(self, candidate_id: int) -> list[dict[str, Any]]:
        return [decode_row(r) for r in self.db.query(
            "SELECT * FROM reviews WHERE candidate_id = ? ORDER BY id", [candidate_id])]

    def last_batch(self, reviewer: str) -> list[dict[str, Any]]:
        """The reviewer's most recent decision that has not been undone (all its rows)."""
        rows = self.db.query(
            "SELECT batch FROM reviews r WHERE reviewer = ? AND undoes IS NULL AND batch IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM reviews u WHERE u.undoes = r.batch) "
            "ORDER BY id DESC LIMIT 1", [reviewer])
        found = [r["batch"] for r in rows]
        if not found:
            return []
        return [decode_row(r) for r in self.db.query(
            "SELECT * FROM reviews WHERE batch = ? ORDER BY id", [found[0]])]

    # -- deals --

    def deal(self, deal_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM deals WHERE id = ?", [deal_id]))
        return decode_row(rows[0]) if rows else None

    def deals(self, include_merged: bool = False, since: str | None = None
              ) -> list[dict[str, Any]]:
        where, params = [], []
        if not include_merged:
            where.append("merged_into IS NULL")
        if since:
            where.append("updated_at >= ?")
            params.append(since)
        sql = "SELECT * FROM deals" + (" WHERE " + " AND ".join(where) if where else "")
        return [decode_row(r) for r in self.db.query(sql + " ORDER BY id", params)]

    def deals_like(self, vendors: Iterable[str], country: str | None) -> list[dict[str, Any]]:
        """Live deals of any of these vendors in this country: where a confirmation may belong."""
        vendors = [v for v in vendors if v]
        if not vendors:
            return []
        marks = ", ".join("?" for _ in vendors)
        rows = self.db.query(
            "SELECT DISTINCT d.* FROM deals d, json_each(d.vendors) v "
            f"WHERE d.merged_into IS NULL AND v.value IN ({marks}) AND d.country IS ? "
            "ORDER BY d.id", [*vendors, country])
        return [decode_row(r) for r in rows]

    def insert_deal(self, fields: Mapping[str, Any], confirmed_by: str, batch: str | None,
                    notes: str | None = None) -> int:
        """A new deal with the DEAL_FIELDS of `fields` (a confirmed candidate's, say)."""
        now = utcnow()
        row = {name: _dump(fields.get(name)) for name in DEAL_FIELDS}
        deal_id = int(self.db.execute(
            "UPDATE deal_numbers SET last = last + 1 RETURNING last").fetchall()[0][0])
        row.update(id=deal_id, deal_id=f"dw-{deal_id:06d}", confirmed_by=confirmed_by,
                   confirmed_at=now, notes=notes, created_at=now, updated_at=now,
                   created_by_batch=batch)
        cols = list(row)
        self.db.execute(
            f"INSERT INTO deals ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols])
        return deal_id

    def update_deal(self, deal_id: int, fields: dict[str, Any], touch: bool = False) -> None:
        """Change a deal; every change is a new version (what export --since and push go by).
        With touch, a new version even without field changes (its sources or stages changed)."""
        if not fields and not touch:
            return
        cols = "".join(f"{name} = ?, " for name in fields)
        self.db.execute(
            f"UPDATE deals SET {cols}version = version + 1, updated_at = ? WHERE id = ?",
            [*(_dump(v) for v in fields.values()), utcnow(), deal_id])

    def delete_deal(self, deal_id: int) -> None:
        self.db.execute("DELETE FROM deal_stages WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deal_sources WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deal_pushes WHERE deal_id = ?", [deal_id])
        self.db.execute("UPDATE candidates SET deal_id = NULL WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deals WHERE id = ?", [deal_id])

    def add_deal_source(self, deal_id: int, candidate_id: int, batch: str | None) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO deal_sources (deal_id, candidate_id, article_id, url, title, "
            "published, sentence, added_at, batch) "
            "SELECT ?, c.id, a.id, a.url, a.title, a.published, c.sentence, ?, ? "
            "FROM candidates c JOIN articles a ON a.id = c.article_id WHERE c.id = ?",
            [deal_id, utcnow(), batch, candidate_id])
        self.db.execute("UPDATE candidates SET deal_id = ? WHERE id = ?", [deal_id, candidate_id])

    def move_deal_sources(self, from_deal: int, to_deal: int,
                          candidate_ids: Iterable[int] | None = None) -> int:
        sql, params = "UPDATE OR IGNORE deal_sources SET deal_id = ? WHERE deal_id = ?", [to_deal, from_deal]
        ids = list(candidate_ids or [])
        if ids:
            sql += f" AND candidate_id IN ({', '.join('?' for _ in ids)})"
            params += ids
        moved = self.db.execute(sql, params).rowcount
        cand_sql = "UPDATE candidates SET deal_id = ? WHERE deal_id = ?"
        stage_sql = "UPDATE deal_stages SET deal_id = ? WHERE deal_id = ?"
        if ids:
            marks = ", ".join("?" for _ in ids)
            cand_sql += f" AND id IN ({marks})"
            stage_sql += f" AND candidate_id IN ({marks})"
        self.db.execute(cand_sql, [to_deal, from_deal, *ids])
        self.db.execute(stage_sql, [to_deal, from_deal, *ids])
        self.db.execute("DELETE FROM deal_sources WHERE deal_id = ?" + (
            f" AND candidate_id IN ({', '.join('?' for _ in ids)})" if ids else ""),
            [from_deal, *ids])
        return moved

    def unlink_source(self, candidate_id: int) -> int | None:
        """Take a candidate out of its deal (sources and stages); the deal it was in."""
        row = self.db.execute("SELECT deal_id FROM candidates WHERE id = ?", [candidate_id]).fetchone()
        deal_id = row[0] if row else None
        self.db.execute("DELETE FROM deal_sources WHERE candidate_id = ?", [candidate_id])
        self.db.execute("DELETE FROM deal_stages WHERE candidate_id = ?", [candidate_id])
        self.db.execute("UPDATE candidates SET deal_id = NULL WHERE id = ?", [candidate_id])
        return int(deal_id) if deal_id is not None else None

    def remove_deal_sources(self, batch: str) -> list[int]:
        """Take out the sources a decision added; the deals they belonged to."""
        deals = [r[0] for r in self.db.execute(
            "SELECT DISTINCT deal_id FROM deal_sources WHERE batch = ?", [batch]).fetchall()]
        self.db.execute(
            "UPDATE candidates SET deal_id = NULL WHERE id IN "
            "(SELECT candidate_id FROM deal_sources WHERE batch = ?)", [batch])
        self.db.execute("DELETE FROM deal_sources WHERE batch = ?", [batch])
        self.db.execute("DELETE FROM deal_stages WHERE batch = ?", [batch])
        return deals

    def deal_sources(self, deal_id: int) -> list[dict[str, Any]]:
        return [decode_row(r) for r in self.db.query(
            "SELECT s.*, c.stage, c.kind, c.deal_types, a.site, c.status AS candidate_status "
            "FROM deal_sources s JOIN candidates c ON c.id = s.candidate_id "
            "LEFT JOIN articles a ON a.id = s.article_id "
            "WHERE s.deal_id = ? ORDER BY COALESCE(s.published, s.added_at), s.url",
            [deal_id])]

    def set_reported_stage(self, candidate_id: int, stage: str | None) -> None:
        """A source's corrected stage is its report in the deal's stage history."""
        if stage and stage != "unknown":
            self.db.execute("UPDATE deal_stages SET stage = ? WHERE candidate_id = ?",
                            [stage, candidate_id])
        else:
            self.db.execute("DELETE FROM deal_stages WHERE candidate_id = ?", [candidate_id])

    def add_stage(self, deal_id: int, stage: str, reported_at: str | None,
                  candidate_id: int | None, reviewer: str, batch: str | None) -> None:
        self.db.execute(
            "INSERT INTO deal_stages (deal_id, stage, reported_at, recorded_at, candidate_id, "
            "reviewer, batch) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [deal_id, stage, reported_at, utcnow(), candidate_id, reviewer, batch])

    def deal_stages(self, deal_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT * FROM deal_stages WHERE deal_id = ? ORDER BY COALESCE(reported_at, recorded_at), id",
            [deal_id]))

    # -- exports and pushes --

    def record_export(self, fmt: str, destination: str | None, since: str | None, deals: int,
                      sha256: str) -> int:
        cur = self.db.execute(
            "INSERT INTO exports (exported_at, format, destination, since, deals, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?)", [utcnow(), fmt, destination, since, deals, sha256])
        return int(cur.lastrowid or 0)

    def pushed_versions(self, endpoint: str) -> dict[int, int]:
        """deal id -> the newest version the endpoint acknowledged."""
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT deal_id, MAX(version) FROM deal_pushes WHERE endpoint = ? AND status = 'sent' "
            "GROUP BY deal_id", [endpoint]).fetchall()}

    def record_push(self, endpoint: str, deal_id: int, version: int, key: str, status: str,
                    error: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO deal_pushes (endpoint, deal_id, version, idempotency_key, status, attempts,"
            " last_error, pushed_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?) "
            "ON CONFLICT(endpoint, deal_id, version) DO UPDATE SET status = excluded.status, "
            "attempts = deal_pushes.attempts + 1, last_error = excluded.last_error, "
            "pushed_at = excluded.pushed_at",
            [endpoint, deal_id, version, key, status, error, utcnow() if status == "sent" else None])

    # -- web UI queries --
    # Keyset paging on (score DESC, id): each page is an index range walk (candidates_queue),
    # so page 2,000 costs what page 1 costs; OFFSET would read every row before it.

    def queue_page(self, query: QueueQuery, limit: int, after: tuple[float, int] | None = None,
                   before: tuple[float, int] | None = None) -> list[dict[str, Any]]:
        """One page of the review queue, best first: queue entries after (or before) a
        (score, id) cursor. Copies of one story (Store.cluster_group) show as their best one."""
        if query.status is None:
            # Every status: one index walk per status, merged — one query over all statuses
            # would sort the whole table for every page.
            from pipeline.storage.store import CANDIDATE_STATUSES

            merged = sorted((row for status in CANDIDATE_STATUSES
                             for row in self.queue_page(replace(query, status=status), limit,
                                                        after, before)),
                            key=lambda row: (-row["score"], row["id"]))
            return merged[-limit:] if before is not None and after is None else merged[:limit]
        where, params = _queue_where(query, "c", "a")
        lead_where, lead_params = _queue_where(query, "c2", "a2")
        order = "c.score DESC, c.id"
        if after is not None:
            where.append("c.score <= ? AND (c.score < ? OR c.id > ?)")
            params += [after[0], after[0], after[1]]
        elif before is not None:
            where.append("c.score >= ? AND (c.score > ? OR c.id < ?)")
            params += [before[0], before[0], before[1]]
            order = "c.score ASC, c.id DESC"
        sql = (
            "SELECT c.*, a.url, a.canonical_url, a.title, a.published, a.site, a.source_id, "
            "a.language, a.cluster_id FROM candidates c JOIN articles a ON a.id = c.article_id "
            "WHERE " + " AND ".join([*where, "1"]) +
            " AND NOT EXISTS (SELECT 1 FROM articles a2 JOIN candidates c2 ON c2.article_id = a2.id"
            " WHERE a2.cluster_id = a.cluster_id AND c2.kind = c.kind"
            " AND COALESCE(c2.vendor, '') = COALESCE(c.vendor, '')"
            " AND COALESCE(c2.country, '') = COALESCE(c.country, '') AND c2.status = c.status"
            " AND (c2.score > c.score OR (c2.score = c.score AND c2.id < c.id))"
            + "".join(f" AND {w}" for w in lead_where) +
            f") ORDER BY {order} LIMIT ?")
        rows = [decode_row(r) for r in self.db.query(sql, [*params, *lead_params, int(limit)])]
        return rows[::-1] if before is not None and after is None else rows

    def cluster_copies(self, cluster_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Every copy of each cluster's story: its articles and the pages that repeated one of
        them word for word, oldest first."""
        ids = sorted(set(cluster_ids))
        out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in ids}
        if not ids:
            return out
        marks = ", ".join("?" for _ in ids)
        rows = self.db.query(
            f"""SELECT a.cluster_id, a.id AS article_id, a.url, a.site, a.title, a.published,
                       'article' AS copy
                FROM articles a WHERE a.cluster_id IN ({marks})
                UNION ALL
                SELECT a.cluster_id, a.id, COALESCE(p.final_url, p.url), NULL, NULL, NULL,
                       'exact duplicate'
                FROM pages p JOIN articles a ON a.id = p.article_id
                WHERE p.process_status = 'duplicate' AND a.cluster_id IN ({marks})
                ORDER BY 1, 2, 7""", [*ids, *ids])
        for row in rows:
            out[row.pop("cluster_id")].append(row)
        return out

    def attach_copies(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows (queue entries, candidates), each given `copies`: every copy of its story,
        none without a cluster. Changed in place."""
        copies = self.cluster_copies(r["cluster_id"] for r in rows if r.get("cluster_id"))
        for row in rows:
            row["copies"] = copies.get(row["cluster_id"], []) if row.get("cluster_id") else []
        return rows

    def queue_status_counts(self, query: QueueQuery) -> dict[str, int]:
        """Candidates per status under the queue's filters (all but the status filter)."""
        where, params = _queue_where(replace(query, status=None), "c", "a")
        on_article = query.source or query.language or query.date_from or query.date_to
        join = " JOIN articles a ON a.id = c.article_id" if on_article else ""
        rows = self.db.execute(
            f"SELECT c.status, COUNT(*) FROM candidates c{join}"
            + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY c.status",
            params).fetchall()
        return {status: int(n) for status, n in rows}

    def candidate_countries(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT country FROM candidates WHERE country IS NOT NULL ORDER BY country")]

    def candidate_languages(self) -> list[str]:
        """The languages of the articles that gave candidates."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT a.language FROM articles a WHERE a.language IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM candidates c WHERE c.article_id = a.id) ORDER BY 1")]

    def source_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM sources ORDER BY id")]

    def deal_source_counts(self) -> dict[int, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT deal_id, COUNT(*) FROM deal_sources GROUP BY deal_id")}


@dataclass(frozen=True)
class QueueQuery:
    """The review queue's filters (None: any). Dates are YYYY-MM-DD, on the article's date."""

    status: str | None = "pending"
    kind: str | None = None
    vendor: str | None = None
    country: str | None = None
    deal_type: str | None = None
    stage: str | None = None
    source: str | None = None
    language: str | None = None  # the article's (ISO 639-1)
    date_from: str | None = None
    date_to: str | None = None
    # The default view shows pending candidates whose score reaches the queue threshold
    # (`queued`); hidden=True shows the ones below it too. min_score: only scores at or above.
    hidden: bool = False
    min_score: float | None = None


def _queue_where(query: QueueQuery, c: str, a: str) -> tuple[list[str], list[Any]]:
    """SQL conditions for a QueueQuery on candidate alias `c` and article alias `a`."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", query.status), ("kind", query.kind),
                          ("vendor", query.vendor), ("country", query.country),
                          ("stage", query.stage)):
        if value is not None:
            where.append(f"{c}.{column} = ?")
            params.append(value)
    if query.deal_type is not None:
        # Any of the candidate's types, not only the first; deal_types is a JSON list of ids.
        pattern = json.dumps(query.deal_type).replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_")
        where.append(f"({c}.deal_type = ? OR {c}.deal_types LIKE ? ESCAPE '\\')")
        params += [query.deal_type, f"%{pattern}%"]
    if not query.hidden:
        # decided candidates stay in their lists whatever their score
        if query.status == "pending":
            where.append(f"{c}.queued = 1")
        elif query.status is None:
            where.append(f"({c}.queued = 1 OR {c}.status != 'pending')")
    if query.min_score is not None:
        where.append(f"{c}.score >= ?")
        params.append(query.min_score)
    if query.source is not None:
        where.append(f"{a}.source_id = ?")
        params.append(query.source)
    if query.language is not None:
        where.append(f"{a}.language = ?")
        params.append(query.language)
    if query.date_from is not None:
        where.append(f"substr({a}.published, 1, 10) >= ?")
        params.append(query.date_from)
    if query.date_to is not None:
        where.append(f"substr({a}.published, 1, 10) <= ?")
        params.append(query.date_to)
    return where, params
