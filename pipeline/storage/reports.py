"""Reports: confirmed aggregate claims ("70 deals in 41 countries"), kept apart from deals.

A report's sources are the candidates it was filed from (`candidates.report_id`); rows leave as
`Report` and `ReportSource` records. Report numbers come from `report_numbers` and are never
reused. A report a decision takes back is withdrawn, not deleted (`withdrawn_at`): it keeps its
number, fields and who confirmed it, so that undoing that decision, or confirming its story
again, brings rp-000003 itself back. Lists, exports and counts leave withdrawn reports out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from models.registry import (
    ClaimCount,
    Report,
    ReportSource,
    ReviewEvent,
    record_of,
    report_number,
)
from pipeline.storage.database import Database, decode_row, dump_value, marks, utcnow

# What a confirmation gives a new report (the store adds its number, times and version).
REPORT_FIELDS = ("candidate_id", "article_id", "vendor", "vendors", "counts", "deals", "countries",
                 "scope", "deal_types", "year", "sentence", "outlet", "url", "title",
                 "published", "notes")
# A report's state as a decision found it: what undoing that decision puts back.
STATE_FIELDS = (*REPORT_FIELDS, "confirmed_by", "confirmed_at", "batch", "version",
                "withdrawn_at")


def _report(row: dict[str, Any]) -> Report:
    row = decode_row(row)
    if isinstance(row.get("counts"), str):
        row["counts"] = json.loads(row["counts"])
    return record_of(Report, row)


def _value(value: Any) -> Any:
    if isinstance(value, list):
        value = [asdict(v) if isinstance(v, ClaimCount) else v for v in value]
    return dump_value(value)


class Reports:
    """The reports and report_numbers tables, and the candidates' link to them."""

    def __init__(self, database: Database):
        self.db = database

    def report(self, report_id: int) -> Report | None:
        rows = list(self.db.query("SELECT * FROM reports WHERE id = ?", [report_id]))
        return _report(rows[0]) if rows else None

    def reports(self, vendor: str | None = None) -> list[Report]:
        """Every report filed (none withdrawn) in number order; vendor: only those naming this
        vendor."""
        if vendor is None:
            rows = self.db.query("SELECT * FROM reports WHERE withdrawn_at IS NULL ORDER BY id")
        else:
            rows = self.db.query(
                "SELECT * FROM reports r WHERE r.withdrawn_at IS NULL AND (r.vendor = ? OR "
                f"{self.db.dialect.json_has('r.vendors')}) ORDER BY r.id", [vendor, vendor])
        return [_report(r) for r in rows]

    def count(self) -> int:
        """How many reports are filed (none withdrawn)."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM reports WHERE withdrawn_at IS NULL").fetchone()[0])

    def filed_from(self, candidate_id: int) -> Report | None:
        """The report this candidate led (filed or withdrawn): where confirming its story again
        files it."""
        rows = list(self.db.query(
            "SELECT * FROM reports WHERE candidate_id = ? ORDER BY id DESC LIMIT 1",
            [candidate_id]))
        return _report(rows[0]) if rows else None

    def next_number(self) -> int:
        """The number the next new report takes."""
        return int(self.db.execute("SELECT last FROM report_numbers").fetchone()[0]) + 1

    def insert_report(self, fields: Mapping[str, Any], confirmed_by: str, batch: str | None,
                      confirmed_at: str | None = None) -> int:
        """A new report with the REPORT_FIELDS of `fields`, confirmed now (or at
        `confirmed_at`); its row id (rp- and that number)."""
        now = utcnow()
        row = {name: _value(fields.get(name)) for name in REPORT_FIELDS}
        number = self.db.take_number("report_numbers")
        row.update(id=number, report_id=report_number(number), confirmed_by=confirmed_by,
                   confirmed_at=confirmed_at or now, batch=batch, created_at=now,
                   updated_at=now)
        self.db.insert_row("reports", row)
        return number

    def update_report(self, report_id: int, fields: Mapping[str, Any]) -> None:
        """Change a report's fields; a new version."""
        if not fields:
            return
        cols = "".join(f"{name} = ?, " for name in fields)
        self.db.execute(
            f"UPDATE reports SET {cols}version = version + 1, updated_at = ? WHERE id = ?",
            [*(_value(v) for v in fields.values()), utcnow(), report_id])

    def refile(self, report_id: int, fields: Mapping[str, Any], confirmed_by: str,
               batch: str) -> None:
        """File a confirmation into a report its story already has (withdrawn or not): its
        REPORT_FIELDS from `fields`, confirmed now by `confirmed_by`, no longer withdrawn; a
        new version."""
        self.update_report(report_id, {
            **{name: fields.get(name) for name in REPORT_FIELDS}, "confirmed_by": confirmed_by,
            "confirmed_at": utcnow(), "batch": batch, "withdrawn_at": None})

    def state(self, report_id: int) -> dict[str, Any]:
        """The report's STATE_FIELDS as stored (JSON columns as text): what `restore` puts
        back."""
        row = self.db.execute(
            f"SELECT {', '.join(STATE_FIELDS)} FROM reports WHERE id = ?", [report_id]).fetchone()
        return dict(zip(STATE_FIELDS, row, strict=True))

    def restore(self, report_id: int, state: Mapping[str, Any]) -> None:
        """Put back a report's state (`state`) as it was, its version too."""
        names = [name for name in STATE_FIELDS if name in state]
        self.db.execute(
            f"UPDATE reports SET {''.join(f'{n} = ?, ' for n in names)}updated_at = ? "
            "WHERE id = ?", [*(state[n] for n in names), utcnow(), report_id])

    def withdraw(self, report_id: int) -> None:
        """Take a report back (its last source left it, or its filing was undone): its sources
        leave it, it keeps its row, number and fields."""
        self.db.execute("UPDATE candidates SET report_id = NULL WHERE report_id = ?", [report_id])
        now = utcnow()
        self.db.execute("UPDATE reports SET withdrawn_at = ?, updated_at = ? "
                        "WHERE id = ? AND withdrawn_at IS NULL", [now, now, report_id])

    def reinstate(self, report_id: int) -> None:
        """A withdrawn report filed again as it was (a decision that withdrew it is undone)."""
        self.db.execute("UPDATE reports SET withdrawn_at = NULL, updated_at = ? "
                        "WHERE id = ? AND withdrawn_at IS NOT NULL", [utcnow(), report_id])

    def withdrawal(self, report: Report) -> ReviewEvent | None:
        """The decision that withdrew the report (its first row: the candidate decided, before
        its copies): the latest standing decision that took a candidate out of it, or the
        undoing of the decision that filed it."""
        rows = list(self.db.query(
            "SELECT * FROM reviews WHERE batch = (SELECT r.batch FROM reviews r "
            f"WHERE ({self.db.dialect.json_int('r.previous', 'report_id')} = ? "
            "OR (r.decision = 'undo' AND r.undoes = ?)) "
            "AND NOT EXISTS (SELECT 1 FROM reviews u WHERE u.undoes = r.batch) "
            "ORDER BY r.id DESC LIMIT 1) ORDER BY id LIMIT 1", [report.id, report.batch]))
        return record_of(ReviewEvent, decode_row(rows[0])) if rows else None

    def link(self, report_id: int, candidate_ids: Iterable[int]) -> None:
        """Make these candidates sources of the report."""
        ids = list(candidate_ids)
        if ids:
            self.db.execute(f"UPDATE candidates SET report_id = ? WHERE id IN "
                            f"({marks(ids)})", [report_id, *ids])

    def unlink(self, candidate_id: int) -> int | None:
        """Take a candidate out of its report; the report's id, or None when it had none."""
        row = self.db.execute("SELECT report_id FROM candidates WHERE id = ?",
                              [candidate_id]).fetchone()
        if row is None or row[0] is None:
            return None
        self.db.execute("UPDATE candidates SET report_id = NULL WHERE id = ?", [candidate_id])
        return int(row[0])

    def sources(self, report_id: int) -> list[ReportSource]:
        """The candidates the report was filed from, with their articles, in candidate order."""
        return self.sources_by_report([report_id]).get(report_id, [])

    def sources_by_report(self, report_ids: Iterable[int] | None = None
                          ) -> dict[int, list[ReportSource]]:
        """Report id -> its sources (as `sources`), of these reports (None: every one), in one
        query."""
        sql = ("SELECT c.report_id, c.id AS candidate_id, c.article_id, c.status, c.sentence, "
               "a.url, a.title, a.site, a.published FROM candidates c "
               "JOIN articles a ON a.id = c.article_id WHERE c.report_id IS NOT NULL")
        ids = None if report_ids is None else list(report_ids)
        if ids == []:
            return {}
        if ids is not None:
            sql += f" AND c.report_id IN ({marks(ids)})"
        found: dict[int, list[ReportSource]] = {}
        for row in self.db.query(sql + " ORDER BY c.id", ids or []):
            found.setdefault(int(row["report_id"]), []).append(record_of(ReportSource, row))
        return found

    def remove_batch(self, batch: str) -> list[int]:
        """Withdraw the reports a decision filed (what undoing it takes back); their ids."""
        ids = [int(r[0]) for r in self.db.execute(
            "SELECT id FROM reports WHERE batch = ? AND withdrawn_at IS NULL ORDER BY id",
            [batch]).fetchall()]
        for report_id in ids:
            self.withdraw(report_id)
        return ids

    def vendors(self) -> list[str]:
        """The vendors filed reports name (for a filter's menu)."""
        return [r[0] for r in self.db.execute(
            f"SELECT DISTINCT v.value FROM reports r, {self.db.dialect.json_elements('r.vendors', 'v')} "
            "WHERE r.withdrawn_at IS NULL ORDER BY 1")]

    # --- deals filed from aggregate claims before reports existed (migration 12) -------------

    def aggregate_deals(self) -> dict[int, list[tuple[int, str | None]]]:
        """Deals every source of which is an aggregate candidate (filed before reports
        existed): deal id -> its sources as (candidate id, the batch that added it), in the
        order they were added. Imported (known) deals and merged ones are left out."""
        rows = self.db.execute(
            "SELECT s.deal_id, s.candidate_id, s.batch FROM deal_sources s "
            "JOIN deals d ON d.id = s.deal_id "
            "WHERE d.merged_into IS NULL AND d.external_id IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM deal_sources o JOIN candidates c ON c.id = o.candidate_id "
            " WHERE o.deal_id = s.deal_id AND c.kind != 'aggregate') "
            f"ORDER BY s.deal_id, {self.db.dialect.insert_order('s')}").fetchall()
        found: dict[int, list[tuple[int, str | None]]] = {}
        for deal_id, candidate_id, batch in rows:
            found.setdefault(int(deal_id), []).append((int(candidate_id), batch))
        return found
