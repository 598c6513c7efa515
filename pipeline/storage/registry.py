"""The registry: deals, their sources and stage history, the audit of corrections, exports and
pushes.

Rows leave as records (`Deal`, `DealSource`, `DealStage`, `DealCorrection`); changes come in as
the fields to set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from models.registry import (
    DEAL_FIELDS,
    Deal,
    DealCorrection,
    DealSource,
    DealStage,
    NewCorrection,
    deal_number,
    record_of,
)
from pipeline.storage.database import Database, decode_row, dump_value, marks, utcnow
from pipeline.storage.deal_query import DealQuery, deal_where

_CORRECTION_JSON = ("sources", "stages", "changes", "before", "versions")


def _correction(row: dict[str, Any]) -> DealCorrection:
    for name in _CORRECTION_JSON:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return record_of(DealCorrection, row)


def _of_deals(column: str, deal_ids: list[int] | None) -> tuple[str, list[Any]]:
    """The condition that `column` is one of these deals (None: any live deal) and its
    parameters, for the reads that fetch rows of many deals in one query."""
    if deal_ids is None:
        return f"{column} IN (SELECT id FROM deals WHERE merged_into IS NULL)", []
    return f"{column} IN ({marks(deal_ids)})", list(deal_ids)


class Registry:
    """The deals, deal_sources, deal_stages, deal_corrections, exports and deal_pushes tables."""

    def __init__(self, database: Database):
        self.db = database

    def deal(self, deal_id: int) -> Deal | None:
        found = self._deals("SELECT * FROM deals WHERE id = ?", [deal_id])
        return found[0] if found else None

    def _deals(self, sql: str, params: list[Any]) -> list[Deal]:
        """The deals a query selects, each with the known deals merged into it (merged_known),
        read in one more query for them all."""
        deals = [record_of(Deal, decode_row(r)) for r in self.db.query(sql, params)]
        if not deals:
            return deals
        by_id = {deal.id: deal for deal in deals}
        for row in self.db.query(
                "WITH RECURSIVE below(root, id) AS ("
                " SELECT merged_into, id FROM deals"
                f" WHERE {self.db.dialect.in_list('merged_into')}"
                " UNION SELECT below.root, d.id FROM deals d JOIN below ON d.merged_into = below.id)"
                " SELECT below.root AS merged_root, d.* FROM below JOIN deals d ON d.id = below.id"
                " WHERE d.external_id IS NOT NULL ORDER BY below.root, d.id",
                [self.db.dialect.list_param(sorted(by_id))]):
            root = row.pop("merged_root")
            by_id[root].merged_known.append(record_of(Deal, decode_row(row)))
        return deals

    def deals(self, include_merged: bool = False, since: str | None = None) -> list[Deal]:
        """The deals in id order; merged ones only with include_merged; since: changed on or
        after (`updated_at`)."""
        where, params = [], []
        if not include_merged:
            where.append("merged_into IS NULL")
        if since:
            where.append("updated_at >= ?")
            params.append(since)
        sql = "SELECT * FROM deals" + (" WHERE " + " AND ".join(where) if where else "")
        return self._deals(sql + " ORDER BY id", params)

    def deals_like(self, vendors: Iterable[str], country: str | None) -> list[Deal]:
        """Live deals of any of these vendors in this country: where a confirmation may belong."""
        return self.deals_of(vendors, [country])

    def deals_of(self, vendors: Iterable[str], countries: Iterable[str | None]) -> list[Deal]:
        """Live deals of any of these vendors in any of these countries, in one query: those a
        page of candidates may be filed under (each keeps the deals_like of its own)."""
        vendors, countries = sorted({v for v in vendors if v}), set(countries)
        if not vendors or not countries:
            return []
        codes = sorted(c for c in countries if c is not None)
        dialect = self.db.dialect
        return self._deals(
            f"SELECT DISTINCT d.* FROM deals d, {dialect.json_elements('d.vendors', 'v')} "
            f"WHERE d.merged_into IS NULL AND {dialect.in_list('v.value')} "
            f"AND ({dialect.in_list('d.country')}"
            + (" OR d.country IS NULL" if None in countries else "") + ") ORDER BY d.id",
            [dialect.list_param(vendors), dialect.list_param(codes)])

    def imported_deals(self, external_ids: Iterable[str]
                       ) -> dict[str, tuple[Deal, dict[str, Any]]]:
        """The deals imported under these external ids (merged ones too), each with the fields
        its last import gave it, in one query."""
        rows = self.db.query(
            f"SELECT * FROM deals WHERE {self.db.dialect.in_list('external_id')}",
            [self.db.dialect.list_param(sorted(set(external_ids)))])
        out: dict[str, tuple[Deal, dict[str, Any]]] = {}
        for row in rows:
            imported = json.loads(row.pop("imported_fields") or "{}")
            out[row["external_id"]] = (record_of(Deal, decode_row(row)), imported)
        return out

    def insert_deal(self, fields: Mapping[str, Any], confirmed_by: str, batch: str | None,
                    notes: str | None = None, extra: Mapping[str, Any] | None = None) -> int:
        """A new deal with the DEAL_FIELDS of `fields` (a confirmed candidate's, say); its id.
        extra: other columns of it (an imported deal's external id, source and origin)."""
        now = utcnow()
        row = {name: dump_value(fields.get(name)) for name in DEAL_FIELDS}
        row.update({name: dump_value(value) for name, value in (extra or {}).items()})
        deal_id = self.db.take_number("deal_numbers")
        row.update(id=deal_id, deal_id=deal_number(deal_id), confirmed_by=confirmed_by,
                   confirmed_at=now, notes=notes, created_at=now, updated_at=now,
                   created_by_batch=batch)
        self.db.insert_row("deals", row)
        return deal_id

    def update_deal(self, deal_id: int, fields: Mapping[str, Any], touch: bool = False) -> None:
        """Change a deal; every change is a new version (what export --since and push go by).
        With touch, a new version even without field changes (its sources or stages changed)."""
        if not fields and not touch:
            return
        cols = "".join(f"{name} = ?, " for name in fields)
        self.db.execute(
            f"UPDATE deals SET {cols}version = version + 1, updated_at = ? WHERE id = ?",
            [*(dump_value(v) for v in fields.values()), utcnow(), deal_id])

    def delete_deal(self, deal_id: int) -> None:
        """Withdraw a deal (its last source is gone). A deal merged into it goes with it: it has
        no sources of its own, and its merged_into must not point at a deal that is gone; but a
        known deal merged into it (imported: another registry attests it) lives again."""
        self.db.execute(
            "UPDATE deals SET merged_into = NULL, version = version + 1, updated_at = ? "
            "WHERE merged_into = ? AND external_id IS NOT NULL", [utcnow(), deal_id])
        for (merged,) in self.db.execute(
                "SELECT id FROM deals WHERE merged_into = ?", [deal_id]).fetchall():
            self.delete_deal(merged)
        self.db.execute("DELETE FROM deal_stages WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deal_sources WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deal_pushes WHERE deal_id = ?", [deal_id])
        self.db.execute("UPDATE candidates SET deal_id = NULL WHERE deal_id = ?", [deal_id])
        self.db.execute("DELETE FROM deals WHERE id = ?", [deal_id])

    def add_deal_source(self, deal_id: int, candidate_id: int, batch: str | None) -> None:
        self.db.execute(
            "INSERT INTO deal_sources (deal_id, candidate_id, article_id, url, title, "
            "published, sentence, added_at, batch) "
            "SELECT ?, c.id, a.id, a.url, a.title, a.published, c.sentence, ?, ? "
            "FROM candidates c JOIN articles a ON a.id = c.article_id WHERE c.id = ? "
            "ON CONFLICT DO NOTHING",
            [deal_id, utcnow(), batch, candidate_id])
        self.db.execute("UPDATE candidates SET deal_id = ? WHERE id = ?", [deal_id, candidate_id])

    def move_deal_sources(self, from_deal: int, to_deal: int,
                          candidate_ids: Iterable[int] | None = None) -> int:
        """Move these sources (None: every one) with their candidates and stage reports."""
        ids = [] if candidate_ids is None else list(candidate_ids)
        if candidate_ids is not None and not ids:
            return 0  # none named: nothing moves (an empty list is not "all")
        # A source the other deal has already stays behind (the DELETE below drops the rest).
        sql = ("UPDATE deal_sources SET deal_id = ? WHERE deal_id = ? AND NOT EXISTS (SELECT 1 "
               "FROM deal_sources o WHERE o.deal_id = ? AND o.candidate_id = deal_sources.candidate_id)")
        params = [to_deal, from_deal, to_deal]
        if ids:
            sql += f" AND candidate_id IN ({marks(ids)})"
            params += ids
        moved = self.db.execute(sql, params).rowcount
        cand_sql = "UPDATE candidates SET deal_id = ? WHERE deal_id = ?"
        stage_sql = "UPDATE deal_stages SET deal_id = ? WHERE deal_id = ?"
        if ids:
            cand_sql += f" AND id IN ({marks(ids)})"
            stage_sql += f" AND candidate_id IN ({marks(ids)})"
        self.db.execute(cand_sql, [to_deal, from_deal, *ids])
        self.db.execute(stage_sql, [to_deal, from_deal, *ids])
        self.db.execute("DELETE FROM deal_sources WHERE deal_id = ?" + (
            f" AND candidate_id IN ({marks(ids)})" if ids else ""),
            [from_deal, *ids])
        return moved

    def move_stages(self, stage_ids: Iterable[int], to_deal: int) -> None:
        """Move these stage reports (ids) to a deal's history."""
        ids = list(stage_ids)
        if ids:
            self.db.execute(f"UPDATE deal_stages SET deal_id = ? WHERE id IN "
                            f"({marks(ids)})", [to_deal, *ids])

    def remove_stages(self, batch: str) -> None:
        """Take out the stage reports a correction set by hand."""
        self.db.execute("DELETE FROM deal_stages WHERE batch = ? AND candidate_id IS NULL",
                        [batch])

    def unlink_source(self, candidate_id: int) -> int | None:
        """Take a candidate out of its deal (sources and stages); the deal it was in."""
        row = self.db.execute("SELECT deal_id FROM candidates WHERE id = ?", [candidate_id]).fetchone()
        deal_id = row[0] if row else None
        self.db.execute("DELETE FROM deal_sources WHERE candidate_id = ?", [candidate_id])
        self.db.execute("DELETE FROM deal_stages WHERE candidate_id = ?", [candidate_id])
        self.db.execute("UPDATE candidates SET deal_id = NULL WHERE id = ?", [candidate_id])
        return int(deal_id) if deal_id is not None else None

    def record_filled(self, candidate_id: int, deal_id: int, fields: Mapping[str, list[Any]]
                      ) -> None:
        """Keep with a source the fields its confirmation filled in on its deal, each as
        [before, after] (`deal_sources.filled`), for its taking out to put them back."""
        self.db.execute("UPDATE deal_sources SET filled = ? WHERE candidate_id = ?",
                        [json.dumps({"deal_id": deal_id, "fields": dict(fields)}), candidate_id])

    def filled_by(self, *, batch: str | None = None, candidate_id: int | None = None
                  ) -> list[tuple[int, dict[str, list[Any]]]]:
        """What the confirmations of these sources (a decision's, or one candidate's) filled
        in: (deal id, field -> [before, after]), for the sources still in the deal they filled
        (one a merge or split moved on filled another deal's fields)."""
        column, value = ("batch", batch) if batch is not None else ("candidate_id", candidate_id)
        out: list[tuple[int, dict[str, list[Any]]]] = []
        for deal_id, filled in self.db.execute(
                f"SELECT deal_id, filled FROM deal_sources WHERE {column} = ? "
                "AND filled IS NOT NULL ORDER BY candidate_id", [value]).fetchall():
            record = json.loads(filled)
            if record.get("deal_id") == deal_id:
                out.append((int(deal_id), record["fields"]))
        return out

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

    def deal_sources(self, deal_id: int) -> list[DealSource]:
        """A deal's sources, oldest report first, with their candidate's stage, kind, types and
        status and their article's site."""
        return self.sources_by_deal([deal_id]).get(deal_id, [])

    def sources_by_deal(self, deal_ids: list[int] | None = None) -> dict[int, list[DealSource]]:
        """The sources of these deals (None: of every live deal) in one query, each deal's
        oldest report first: what a list of deals or an export reads, not one query a deal."""
        where, params = _of_deals("s.deal_id", deal_ids)
        out: dict[int, list[DealSource]] = {}
        for row in self.db.query(
                "SELECT s.*, c.stage, c.kind, c.deal_types, a.site, c.status AS candidate_status, "
                "a.source_id, a.cluster_id "
                "FROM deal_sources s JOIN candidates c ON c.id = s.candidate_id "
                "LEFT JOIN articles a ON a.id = s.article_id "
                f"WHERE {where} ORDER BY s.deal_id, COALESCE(s.published, s.added_at), s.url",
                params):
            row = decode_row(row)
            if row.get("official") is not None:
                row["official"] = bool(row["official"])
            out.setdefault(row["deal_id"], []).append(record_of(DealSource, row))
        return out

    def set_source_official(self, candidate_id: int, official: bool | None) -> None:
        """A reviewer's word on whether a source is an official statement (None: none)."""
        self.db.execute("UPDATE deal_sources SET official = ? WHERE candidate_id = ?",
                        [None if official is None else int(official), candidate_id])

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

    def deal_stages(self, deal_id: int) -> list[DealStage]:
        """A deal's stage history, oldest report first."""
        return self.stages_by_deal([deal_id]).get(deal_id, [])

    def stages_by_deal(self, deal_ids: list[int] | None = None) -> dict[int, list[DealStage]]:
        """The stage histories of these deals (None: of every live deal) in one query."""
        where, params = _of_deals("deal_id", deal_ids)
        out: dict[int, list[DealStage]] = {}
        for row in self.db.query(
                f"SELECT * FROM deal_stages WHERE {where} "
                "ORDER BY deal_id, COALESCE(reported_at, recorded_at), id", params):
            out.setdefault(row["deal_id"], []).append(record_of(DealStage, row))
        return out

    # -- the audit of corrections (append-only: triggers refuse updates and deletes) --

    def add_correction(self, correction: NewCorrection) -> DealCorrection:
        """Write a correction to the audit, made now, after the newest review decision."""
        row = {k: dump_value(v) for k, v in asdict(correction).items()}
        row["corrected_at"] = utcnow()
        cols = list(row)
        new_id = self.db.execute(
            f"INSERT INTO deal_corrections ({', '.join(cols)}, after_review) VALUES "
            f"({marks(cols)}, (SELECT COALESCE(MAX(id), 0) FROM reviews)) RETURNING id",
            [row[c] for c in cols]).fetchone()[0]
        stored = self.correction(int(new_id))
        assert stored is not None
        return stored

    def correction(self, correction_id: int) -> DealCorrection | None:
        rows = list(self.db.query("SELECT * FROM deal_corrections WHERE id = ?", [correction_id]))
        return _correction(rows[0]) if rows else None

    def corrections_of(self, deal_id: int) -> list[DealCorrection]:
        """The corrections that changed a deal (kept, absorbed, split or split off, edited) and
        their undoing, oldest first."""
        return [_correction(r) for r in self.db.query(
            "SELECT * FROM deal_corrections WHERE deal_id = ? OR other_deal_id = ? ORDER BY id",
            [deal_id, deal_id])]

    def last_correction(self, reviewer: str) -> DealCorrection | None:
        """The reviewer's most recent correction that has not been undone."""
        rows = list(self.db.query(
            "SELECT * FROM deal_corrections c WHERE reviewer = ? AND action != 'undo' "
            "AND NOT EXISTS (SELECT 1 FROM deal_corrections u WHERE u.undoes = c.id) "
            "ORDER BY id DESC LIMIT 1", [reviewer]))
        return _correction(rows[0]) if rows else None

    def standing_merges(self, keep: int) -> list[DealCorrection]:
        """The merges into a deal that have not been undone, newest first."""
        return [_correction(r) for r in self.db.query(
            "SELECT * FROM deal_corrections c WHERE action = 'merge' AND deal_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM deal_corrections u WHERE u.undoes = c.id) "
            "ORDER BY id DESC", [keep])]

    # -- exports and pushes --

    def record_export(self, fmt: str, destination: str | None, since: str | None, deals: int,
                      sha256: str) -> int:
        return self.db.insert_row("exports", {
            "exported_at": utcnow(), "format": fmt, "destination": destination, "since": since,
            "deals": deals, "sha256": sha256})

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

    # -- finding deals (the deals list's filters and search) --

    def find_deals(self, query: DealQuery) -> list[Deal]:
        """The live deals a DealQuery's stored fields and search match, in id order (its
        confidence and order are the review layer's: they are weighed on read)."""
        where, params = deal_where(query, "d", self.db.dialect)
        return self._deals(f"SELECT d.* FROM deals d WHERE {' AND '.join(where)} ORDER BY d.id",
                           params)

    def count_deals(self) -> int:
        """How many live deals the registry holds."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM deals WHERE merged_into IS NULL").fetchone()[0])

    def deal_facets(self) -> dict[str, list[Any]]:
        """The countries and years the live deals have, sorted: what the deals list's filters
        offer."""
        return {column: [r[0] for r in self.db.execute(
            f"SELECT DISTINCT {column} FROM deals WHERE merged_into IS NULL "
            f"AND {column} IS NOT NULL ORDER BY 1")] for column in ("country", "year")}
