"""Runs and sources: what each crawl, process and nightly run did, and the configured sources."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from models.config import Source
from models.registry import Run, record_of
from pipeline.storage.database import Database, decode_row, dump_json, marks, utcnow


class Runs:
    """The runs table (one row per crawl, process or nightly run) and the sources table."""

    def __init__(self, database: Database):
        self.db = database

    def sync_sources(self, sources: Iterable[Source]) -> None:
        now = utcnow()
        with self.db.transaction(concurrent=True):
            for src in sources:
                self.db.execute(
                    """INSERT INTO sources (id, kind, name, urls, enabled, config, first_seen,
                                            updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                         urls = excluded.urls, enabled = excluded.enabled,
                         config = excluded.config, updated_at = excluded.updated_at""",
                    [src.id, src.kind, src.name, dump_json(src.urls), int(src.enabled),
                     src.model_dump_json(), now, now],
                )

    def source_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM sources ORDER BY id")]

    def start_run(self, kind: str, sources: list[str] | None = None, pid: int | None = None) -> int:
        return self.db.insert_row("runs", {"kind": kind, "started_at": utcnow(),
                                           "sources": dump_json(sources or []), "pid": pid})

    def finish_run(self, run_id: int, outcome: str, counters: dict[str, Any],
                   message: str | None = None) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, counters = ?, message = ? WHERE id = ?",
            [utcnow(), outcome, dump_json(counters), message, run_id],
        )

    def abort_run(self, run_id: int, message: str) -> bool:
        """Mark a run aborted whose process died, if it is still "running" (a run that ended,
        failed say, keeps its outcome and message); whether it was."""
        return bool(self.db.execute(
            "UPDATE runs SET outcome = 'aborted', finished_at = ?, message = ? "
            "WHERE id = ? AND outcome = 'running'", [utcnow(), message, run_id]).rowcount)

    def abort_stale_runs(self) -> int:
        """Mark runs still "running" as aborted. Call only while holding the run lock: then no
        other run can be live, so such rows belong to processes that were killed."""
        cur = self.db.execute(
            "UPDATE runs SET outcome = 'aborted', finished_at = COALESCE(finished_at, ?), "
            "message = COALESCE(message, 'the process ended before the run finished') "
            "WHERE outcome = 'running'", [utcnow()])
        return cur.rowcount

    def last_run_started(self, kinds: tuple[str, ...] = ("run",)) -> datetime | None:
        row = self.db.execute(f"SELECT MAX(started_at) FROM runs WHERE kind IN ({marks(kinds)})",
                              list(kinds)).fetchone()
        if not row or not row[0]:
            return None
        return datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def recent(self, limit: int = 10) -> list[Run]:
        """The last runs, newest first."""
        rows = self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit])
        return [record_of(Run, decode_row(r)) for r in rows]
