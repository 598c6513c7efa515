"""Reviews: the append-only audit of every decision, and the last one a reviewer may undo."""

from __future__ import annotations

from dataclasses import asdict

from models.registry import NewReview, ReviewEvent, record_of
from pipeline.storage.database import Database, decode_row, dump_value, utcnow


class Reviews:
    """The reviews table (append-only: triggers refuse updates and deletes)."""

    def __init__(self, database: Database):
        self.db = database

    def add_review(self, review: NewReview) -> int:
        """Write a decision to the audit, decided now; its row id."""
        row = {k: dump_value(v) for k, v in asdict(review).items()}
        row["decided_at"] = utcnow()
        return self.db.insert_row("reviews", row)

    def reviews_of(self, candidate_id: int) -> list[ReviewEvent]:
        """A candidate's decisions, oldest first."""
        return [record_of(ReviewEvent, decode_row(r)) for r in self.db.query(
            "SELECT * FROM reviews WHERE candidate_id = ? ORDER BY id", [candidate_id])]

    def last_batch(self, reviewer: str) -> list[ReviewEvent]:
        """The reviewer's most recent decision that has not been undone (all its rows)."""
        rows = self.db.query(
            "SELECT batch FROM reviews r WHERE reviewer = ? AND undoes IS NULL AND batch IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM reviews u WHERE u.undoes = r.batch) "
            "ORDER BY id DESC LIMIT 1", [reviewer])
        found = [r["batch"] for r in rows]
        if not found:
            return []
        return [record_of(ReviewEvent, decode_row(r)) for r in self.db.query(
            "SELECT * FROM reviews WHERE batch = ? ORDER BY id", [found[0]])]
