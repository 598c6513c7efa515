"""What a reviewer looks at, as data (a candidate in context, a deal, an outcome), and where the web UI is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.registry import QueueEntry
from pipeline.review.decisions import EDITABLE_FIELDS, Outcome, ReviewError, history
from pipeline.review.export import RegistryRecord, deal_record
from pipeline.review.present import country_name, evidence_span
from pipeline.review.registry import RegistryError, suggest_deals
from pipeline.storage import Store

# Where `dealwatch serve` listens unless told otherwise.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def review_ui_hint(db_path: Path, has_reviewers: bool, prog: str = "dealwatch") -> str:
    """What to run to review a database in the browser (the demo prints it last)."""
    db = f"--db {db_path} " if str(db_path) != "data/dealwatch.db" else ""
    first = "" if has_reviewers else f"`{prog} {db}user add NAME` (once), then "
    return (f"Review them in your browser: {first}`{prog} {db}serve` and open "
            f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/ (j/k to move, c/r/d to decide, ? for keys).")


def deal_label(store: Store, deal_id: int | None) -> str | None:
    """A deal's registry id (dw-000003), None when there is no such deal."""
    deal = store.registry.deal(deal_id) if deal_id is not None else None
    return deal.deal_id if deal else None


def evidence_in_context(candidate: QueueEntry, width: int = 240) -> dict[str, Any]:
    """The evidence sentence with the text around it, when the offsets point at it."""
    text = candidate.article_text or ""
    evidence = {"sentence": candidate.sentence, "start": candidate.start, "end": candidate.end,
                "before": "", "after": ""}
    span = evidence_span(text, candidate.sentence, candidate.start, candidate.end)
    if span:
        start, end = span
        evidence["before"] = " ".join(text[max(0, start - width):start].split())
        evidence["after"] = " ".join(text[end:end + width].split())
    return evidence


def candidate_view(store: Store, candidate_id: int) -> dict[str, Any]:
    """One candidate with its article, evidence in context, entities, copies, the registry deals
    it may belong to and its decision history (ReviewError when there is no such candidate)."""
    row = store.candidates.candidate(candidate_id)
    if row is None:
        raise ReviewError(f"no candidate #{candidate_id}")
    copies = store.candidates.cluster_copies([row.cluster_id]).get(row.cluster_id, []) \
        if row.cluster_id is not None else []
    return {
        "candidate": {
            "id": row.id, "status": row.status, "version": row.version,
            "kind": row.kind, "score": row.score,
            **{name: getattr(row, name) for name in EDITABLE_FIELDS},
            "country_name": country_name(row.country),
            "reviewed_by": row.reviewed_by, "reviewed_at": row.reviewed_at,
            "reason": row.reason, "note": row.note,
            "deal_id": deal_label(store, row.deal_id), "signals": row.signals,
            "reasons": row.reasons or [], "queued": bool(row.queued),
        },
        "article": {name: getattr(row, name) for name in (
            "article_id", "title", "url", "canonical_url", "published", "site", "author",
            "language", "language_declared", "language_source", "cluster_id")},
        "evidence": evidence_in_context(row),
        "entities": store.articles.entities_of(row.article_id),
        "copies": [c.to_dict() for c in copies if c.article_id != row.article_id
                   or c.copy != "article"],
        "suggestions": [{
            "deal_id": s.deal.deal_id, "score": round(s.score, 2), "why": s.why,
            "counterpart": s.deal.counterpart, "deal_types": s.deal.deal_types,
            "stage": s.deal.stage, "first_reported": s.deal.first_reported,
            "last_reported": s.deal.last_reported,
        } for s in suggest_deals(store, row)],
        "history": [event.to_dict() for event in history(store, candidate_id)],
    }


def outcome_view(store: Store, outcome: Outcome) -> dict[str, Any]:
    """A decision's outcome as scripts read it: the deal by its registry id."""
    return {
        "decision": outcome.decision, "status": outcome.status,
        "candidate_ids": outcome.candidate_ids, "deal_id": deal_label(store, outcome.deal_id),
        "batch": outcome.batch, "versions": {str(k): v for k, v in outcome.versions.items()},
    }


@dataclass
class DealView:
    record: RegistryRecord  # the registry record, as exported
    merged_into: str | None  # the deal it was merged into, if it was
    candidates: dict[str | None, list[int]]  # source URL -> the candidates filed under it


def deal_view(store: Store, deal_id: int) -> DealView:
    """One deal as the registry records it, with the candidates behind each source
    (RegistryError when there is no such deal)."""
    deal = store.registry.deal(deal_id)
    if deal is None:
        raise RegistryError(f"no deal {deal_id} in the registry")
    candidates: dict[str | None, list[int]] = {}
    for source in store.registry.deal_sources(deal_id):
        candidates.setdefault(source.url, []).append(source.candidate_id)
    return DealView(deal_record(store, deal), deal_label(store, deal.merged_into),
                    candidates)
