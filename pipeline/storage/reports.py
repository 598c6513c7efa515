"""Reports: confirmed aggregate claims ("70 deals in 41 countries"), kept apart from deals.

A report's sources are the candidates it was filed from (`candidates.report_id`); rows leave as
`Report` and `ReportSource` records. Report numbers come from `report_numbers` and are never
reused, so a withdrawn rp-000003 never names another claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from models.registry import ClaimCount, Report, ReportSource, record_of, report_number
from pipeline.storage.database import Database, decode_row, dump_value, utcnow

# What a confirmation gives a new report (the store adds its number, times and version).
REPORT_FIELDS = ("candidate_id", "article_id", "vendor", "vendors", "counts", "deals", "countries",
                 "scope", "deal_types", "year", "sentence", "outlet", "url", "title",
                 "published", "notes")


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
        self.database = database
        self.db = database.db

    def report(self, report_id: int) -> Report | None:
        rows = list(self.db.query("SELECT * FROM reports WHERE id = ?", [report_id]))
        return _report(rows[0]) if rows else None

    def reports(self, vendor: str | None = None) -> list[Report]:
        """Every report in number order; vendor: only those naming this vendor."""
        if vendor is None:
            rows = self.db.query("SELECT * FROM reports ORDER BY id")
        else:
            rows = self.db.query(
                "SELECT * FROM reports r WHERE r.vendor = ? OR EXISTS "
                "(SELECT 1 FROM json_each(r.vendors) v WHERE v.value = ?) ORDER BY r.id",
                [vendor, vendor])
        return [_report(r) for r in rows]

    def insert_report(self, fields: Mapping[str, Any], confirmed_by: str, batch: str | None
                      ) -> int:
        """A new report with the REPORT_FIELDS of `fields`; its row id (rp- and that number)."""
        now = utcnow()
        row = {name: _value(fields.get(name)) for name in REPORT_FIELDS}
        number = int(self.db.execute(
            "UPDATE report_numbers SET last = last + 1 RETURNING last").fetchall()[0][0])
        row.update(id=number, report_id=report_number(number), confirmed_by=confirmed_by,
                   confirmed_at=now, batch=batch, created_at=now, updated_at=now)
        cols = list(row)
        self.db.execute(
            f"INSERT INTO reports ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols])
        return number

    def update_report(self, report_id: int, fields: Mapping[str, Any]) -> None:
        """Change a report's fields; a new version."""
        if not fields:
            return
        cols = "".join(f"{name} = ?, " for name in fields)
        self.db.execute(
            f"UPDATE reports SET {cols}version = version + 1, updated_at = ? WHERE id = ?",
            [*(_value(v) for v in fields.values()), utcnow(), report_id])

    def link(self, report_id: int, candidate_ids: Iterable[int]) -> None:
        """Make these candidates sources of the report."""
        ids = list(candidate_ids)
        if ids:
            self.db.execute(f"UPDATE candidates SET report_id = ? WHERE id IN "
                            f"({', '.join('?' for _ in ids)})", [report_id, *ids])

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
            sql += f" AND c.report_id IN ({', '.join('?' for _ in ids)})"
        found: dict[int, list[ReportSource]] = {}
        for row in self.db.query(sql + " ORDER BY c.id", ids or []):
            found.setdefault(int(row["report_id"]), []).append(record_of(ReportSource, row))
        return found

    def delete_report(self, report_id: int) -> None:
        """Withdraw a report (its candidates are rejected, or its confirmation undone)."""
        self.db.execute("UPDATE candidates SET report_id = NULL WHERE report_id = ?", [report_id])
        self.db.execute("DELETE FROM reports WHERE id = ?", [report_id])

    def remove_batch(self, batch: str) -> list[int]:
        """Withdraw the reports a decision filed (what undoing it takes back); their ids."""
        ids = [int(r[0]) for r in self.db.execute(
            "SELECT id FROM reports WHERE batch = ? ORDER BY id", [batch]).fetchall()]
        for report_id in ids:
            self.delete_report(report_id)
        return ids

    def vendors(self) -> list[str]:
        """The vendors reports name (for a filter's menu)."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT v.value FROM reports r, json_each(r.vendors) v ORDER BY 1")]
