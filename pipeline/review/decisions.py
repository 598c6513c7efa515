"""Review decisions — confirm, reject, defer, edit, undo — shared by the web UI and the CLI.

Every decision is written to the append-only `reviews` table (who, when, what, the fields before
it) and guarded by the candidate's version: when two reviewers decide the same candidate at
once, the second is told and nothing is overwritten. A syndicated story's copies (one queue
entry) are decided together, as one batch; undo takes back a reviewer's last batch.

An aggregate claim ("70 deals in 41 countries") is no deal: confirming one files a report
(`review.reports`), and undoing or rejecting that confirmation withdraws the report.

Undo goes back through a reviewer's changes newest first and never skips one: when their latest
change is a registry correction (a merge, split or deal edit, in the deal audit), `undo` refuses
and names it, for `registry.undo_correction` (`dealwatch deals undo`) to take back first.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from models.config import COUNTERPART_TYPES, DEAL_TYPES, STAGES
from models.errors import DealwatchError
from models.registry import NewReview, QueueEntry, ReviewEvent
from pipeline.review.registry import (
    describe_correction,
    file_confirmation,
    newer_correction,
    settle_deals,
    source_changed,
    unfile_batch,
    unfile_source,
)
from pipeline.review.reports import (
    AGGREGATE,
    ClaimReader,
    file_report,
    refile_report,
    report_changed,
    restore_report,
    settle_reports,
)
from pipeline.storage import DEAL_FIELDS, Store, utcnow

logger = logging.getLogger(__name__)

REJECT_REASONS = ("not_a_deal", "wrong_vendor", "domestic", "duplicate", "aggregate", "other")
EDITABLE_FIELDS = DEAL_FIELDS  # a reviewer corrects what the registry records
DECISIONS = {"confirm": "confirmed", "reject": "rejected", "defer": "deferred"}


class ReviewError(DealwatchError):
    """A decision that cannot be made as asked (unknown candidate, bad field value, …)."""


class ConflictError(ReviewError):
    """Someone else changed the candidate since the reviewer loaded it."""


@dataclass
class Outcome:
    decision: str
    candidate_ids: list[int]
    batch: str
    status: str
    deal_id: int | None = None
    versions: dict[int, int] = field(default_factory=dict)
    report_id: int | None = None  # the report a confirmed aggregate was filed as


def _split_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def clean_edits(edits: dict[str, Any], known_vendors: set[str] | None = None) -> dict[str, Any]:
    """Validate and normalise a reviewer's field edits (from a form, the CLI or JSON)."""
    out: dict[str, Any] = {}
    for name, raw in edits.items():
        if name not in EDITABLE_FIELDS:
            raise ReviewError(f"{name}: not an editable field (one of {', '.join(EDITABLE_FIELDS)})")
        value: Any = raw.strip() if isinstance(raw, str) else raw
        if value in ("", None):
            value = [] if name in ("vendors", "deal_types") else None
        elif name in ("vendors", "deal_types"):
            value = _split_list(value)
        elif name == "country":
            value = str(value).upper()
            if len(value) != 2 or not value.isalpha():
                raise ReviewError(f"country: an ISO 3166-1 alpha-2 code such as KE, not {raw!r}")
        elif name == "value":
            try:
                value = float(str(value).replace(",", ""))
            except ValueError:
                raise ReviewError(f"value: a number, not {raw!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ReviewError(f"value: an amount of zero or more, not {raw!r}")
        elif name == "year":
            try:
                value = int(value)
            except ValueError:
                raise ReviewError(f"year: a whole number, not {raw!r}") from None
            if not 1990 <= value <= 2100:
                raise ReviewError(f"year: {value} is out of range")
        elif name == "currency":
            value = str(value).upper()
            if not re.fullmatch(r"[A-Z]{3}", value):
                raise ReviewError(f"currency: an ISO 4217 code such as USD or KES, not {raw!r}")
        out[name] = value
    for name, allowed in (("stage", STAGES), ("deal_type", DEAL_TYPES),
                          ("counterpart_type", COUNTERPART_TYPES)):
        if out.get(name) is not None and out[name] not in allowed:
            raise ReviewError(f"{name}: one of {', '.join(allowed)}, not {out[name]!r}")
    for t in out.get("deal_types") or []:
        if t not in DEAL_TYPES:
            raise ReviewError(f"deal_types: one of {', '.join(DEAL_TYPES)}, not {t!r}")
    if known_vendors is not None:
        for v in [out.get("vendor"), *(out.get("vendors") or [])]:
            if v and v not in known_vendors:
                raise ReviewError(f"vendor: {v!r} is not a watchlist vendor id")
    # keep the single and list forms in step (an emptied list empties its single form too)
    for single, listed in (("vendor", "vendors"), ("deal_type", "deal_types")):
        if out.get(single) and listed not in out:
            out[listed] = [out[single]]
        if listed in out and single not in out:
            out[single] = out[listed][0] if out[listed] else None
    return out


def _load(store: Store, candidate_id: int) -> QueueEntry:
    row = store.candidates.candidate(candidate_id)
    if row is None:
        raise ReviewError(f"no candidate #{candidate_id}")
    return row


def _conflict(store: Store, row: QueueEntry) -> ConflictError:
    fresh = store.candidates.candidate(row.id) or row
    who = f" by {fresh.reviewed_by} at {fresh.reviewed_at}" if fresh.reviewed_by else ""
    return ConflictError(f"candidate #{row.id} was changed{who} (now {fresh.status}) "
                         "after you loaded it; reload it and decide again")


def decide(store: Store, candidate_id: int, decision: str, reviewer: str, *,
           version: int | None = None, reason: str | None = None, note: str | None = None,
           edits: dict[str, Any] | None = None, deal_id: int | str | None = None,
           known_vendors: set[str] | None = None, claims: ClaimReader | None = None
           ) -> Outcome:
    """Confirm, reject or defer a candidate and the copies shown with it, in one batch.

    version: the candidate version the reviewer saw (None: whatever it is now, for scripts).
    edits: fields corrected before confirming. deal_id: for a confirmation, the deal to file it
    under ("new" for a new deal; None picks a matching deal or starts one). claims: reads an
    aggregate's claim when confirming files it as a report (no deal_id then).
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision: one of {', '.join(DECISIONS)}, not {decision!r}")
    if decision == "reject":
        if reason not in REJECT_REASONS:
            raise ReviewError(f"reason: one of {', '.join(REJECT_REASONS)}, not {reason!r}")
    elif reason is not None:
        raise ReviewError("a reason goes with a rejection only")
    changes = clean_edits(edits or {}, known_vendors)
    status = DECISIONS[decision]
    batch = secrets.token_hex(8)
    with store.transaction():
        lead = _load(store, candidate_id)
        if version is not None and lead.version != version:
            raise _conflict(store, lead)
        if decision == "confirm" and lead.kind == AGGREGATE:
            _check_report_filing(lead, deal_id, claims)
        members = [m for m in store.candidates.cluster_group(lead) if m != lead.id]
        outcome = Outcome(decision, [lead.id, *members], batch, status)
        decided: list[QueueEntry] = []
        audit: list[NewReview] = []
        left: list[int | None] = []
        left_reports: list[int | None] = []
        for member in [lead.id, *members]:
            row = lead if member == lead.id else _load(store, member)
            before = {name: getattr(row, name) for name in (*EDITABLE_FIELDS, "status", "reason",
                                                            "note", "reviewed_by", "reviewed_at",
                                                            "deal_id", "report_id")}
            if row.deal_id:  # decided again: out of its deal until filed anew
                left.append(unfile_source(store, row.id))
            if row.report_id:  # and out of its report
                left_reports.append(store.reports.unlink(row.id))
            values: dict[str, Any] = {**changes, "status": status, "reviewed_by": reviewer,
                                      "reviewed_at": utcnow(), "reason": reason,
                                      "note": note if note is not None else row.note}
            if not store.candidates.set_candidate(row.id, row.version, values):
                raise _conflict(store, row)
            outcome.versions[row.id] = row.version + 1
            audit.append(NewReview(
                candidate_id=row.id, reviewer=reviewer, decision=decision, reason=reason,
                note=note, batch=batch, previous_status=row.status, previous=before,
                version=row.version + 1,
                edits={k: [before.get(k), v] for k, v in changes.items()
                       if before.get(k) != v} or None,
            ))
            decided.append(replace(row, **values))
        if decision == "confirm" and lead.kind == AGGREGATE:
            assert claims is not None  # _check_report_filing
            filed = file_report(store, decided, reviewer, batch, claims)
            outcome.report_id = filed.report_id
            if filed.before is not None:  # filed into the story's report: undo puts it back
                audit[0].previous = {**(audit[0].previous or {}), "report": filed.before}
        elif decision == "confirm":
            outcome.deal_id = file_confirmation(store, decided, reviewer, batch, deal_id)
        settle_deals(store, [d for d in left if d is not None and d != outcome.deal_id])
        settle_reports(store, left_reports)
        for entry in audit:
            entry.deal_id, entry.report_id = outcome.deal_id, outcome.report_id
            store.reviews.add_review(entry)
    logger.info("%s %s candidate(s) %s", reviewer, status, outcome.candidate_ids)
    return outcome


def _check_report_filing(lead: QueueEntry, deal_id: int | str | None,
                         claims: ClaimReader | None) -> None:
    if deal_id is not None:
        raise ReviewError(f"candidate #{lead.id} is an aggregate claim: confirming files it as "
                          "a report, not under a deal (leave out the deal)")
    if claims is None:
        raise ReviewError(f"candidate #{lead.id} is an aggregate claim: filing it as a report "
                          "reads its claim, and no ClaimReader was given")


def edit(store: Store, candidate_id: int, reviewer: str, edits: dict[str, Any], *,
         version: int | None = None, note: str | None = None,
         known_vendors: set[str] | None = None) -> Outcome:
    """Correct a candidate's fields without deciding it (the audit records the change)."""
    changes = clean_edits(edits, known_vendors)
    if not changes and note is None:
        raise ReviewError("nothing to change")
    batch = secrets.token_hex(8)
    with store.transaction():
        row = _load(store, candidate_id)
        if version is not None and row.version != version:
            raise _conflict(store, row)
        before = {name: getattr(row, name) for name in (*EDITABLE_FIELDS, "status", "note")}
        values = {**changes, **({"note": note} if note is not None else {})}
        if not store.candidates.set_candidate(row.id, row.version, values):
            raise _conflict(store, row)
        store.reviews.add_review(NewReview(
            candidate_id=row.id, reviewer=reviewer, decision="edit", note=note, batch=batch,
            previous_status=row.status, previous=before, version=row.version + 1,
            edits={k: [before.get(k), v] for k, v in changes.items() if before.get(k) != v},
        ))
        if changes:  # a note alone changes nothing a registry sees
            source_changed(store, replace(row, **changes))
            report_changed(store, replace(row, **changes))
    return Outcome("edit", [row.id], batch, row.status, versions={row.id: row.version + 1})


def bulk_reject(store: Store, candidate_ids: list[int], reviewer: str, reason: str,
                note: str | None = None, versions: Mapping[int, int] | None = None
                ) -> list[Outcome]:
    """Reject a selection (each with its copies); all or nothing.

    versions: candidate id → the version the reviewer saw; a candidate changed since then
    stops the whole rejection with a ConflictError.
    """
    outcomes: list[Outcome] = []
    done: set[int] = set()
    with store.transaction():
        for candidate_id in candidate_ids:
            if candidate_id in done:
                continue
            outcome = decide(store, candidate_id, "reject", reviewer, reason=reason, note=note,
                             version=(versions or {}).get(candidate_id))
            done.update(outcome.candidate_ids)
            outcomes.append(outcome)
    return outcomes


def undo(store: Store, reviewer: str, claims: ClaimReader | None = None) -> Outcome:
    """Take back the reviewer's last decision: statuses and fields as they were, the registry
    and the reports as they were; recorded in the audit as an `undo`. Refused (naming it) while
    a registry correction of theirs came after that decision: that is taken back first.
    claims: reads an aggregate's claim again when the decision took it out of a report that
    is gone (it is filed anew)."""
    with store.transaction():
        rows = store.reviews.last_batch(reviewer)
        correction = newer_correction(store, reviewer)
        if correction is not None:
            what = describe_correction(correction)
            if rows:
                raise ReviewError(
                    f"{reviewer}'s last change was a registry correction, {what}: "
                    "`dealwatch deals undo` takes it back first (review undo takes back review "
                    "decisions only, and never past a later registry correction)")
            raise ReviewError(f"{reviewer} has no decision to undo; the last registry "
                              f"correction, {what}, is taken back by `dealwatch deals undo`")
        if not rows:
            raise ReviewError(f"{reviewer} has no decision to undo")
        batch = rows[0].batch
        assert batch is not None  # last_batch gives the rows of one batch
        undo_batch = secrets.token_hex(8)
        for review in rows:
            current = _load(store, review.candidate_id)
            if current.version != review.version:
                raise ConflictError(
                    f"candidate #{current.id} changed after your decision "
                    f"(by {current.reviewed_by or 'processing'}); it cannot be undone")
        touched = unfile_batch(store, batch)
        store.reports.remove_batch(batch)
        refile: dict[int | None, list[QueueEntry]] = {}  # earlier report -> copies to file anew
        for review in rows:
            current = _load(store, review.candidate_id)
            previous = dict(review.previous or {})
            previous["status"] = review.previous_status
            earlier_deal = previous.pop("deal_id", None)
            earlier_report = previous.pop("report_id", None)
            report_before = previous.pop("report", None)  # the report this decision refiled
            if report_before is not None and review.report_id:
                store.reports.restore(review.report_id, report_before)
            store.candidates.set_candidate(current.id, current.version, previous)
            if review.decision == "edit":
                source_changed(store, replace(current, **previous))
                report_changed(store, replace(current, **previous))
            elif previous["status"] == "confirmed" and current.kind == AGGREGATE:
                # it was in a report before this decision took it out: back in, or with its
                # copies into a report filed anew when that report has gone
                if earlier_report and store.reports.report(earlier_report):
                    restore_report(store, earlier_report, current.id)
                else:
                    refile.setdefault(earlier_report, []).append(replace(current, **previous))
            elif previous["status"] == "confirmed":
                # it was a source of a deal before this decision took it out: put it back (with
                # the fields its taking out emptied), or file it anew when that deal has gone
                # (withdrawn with its last source)
                row = replace(current, **previous)
                deal = store.registry.deal(earlier_deal) if earlier_deal else None
                if deal and not deal.merged_into:
                    touched.append(file_confirmation(store, [row], reviewer, None, deal.id))
                else:
                    touched.append(file_confirmation(store, [row], reviewer, undo_batch, None))
            store.reviews.add_review(NewReview(
                candidate_id=current.id, reviewer=reviewer, decision="undo", undoes=batch,
                batch=undo_batch, previous_status=current.status, version=current.version + 1,
            ))
        for copies in refile.values():
            if claims is None:
                raise ReviewError(f"#{copies[0].id} goes back to a report, and filing one reads "
                                  "its claim: no ClaimReader was given")
            refile_report(store, copies, claims, undo_batch)
        settle_deals(store, touched)
    first = rows[0]
    return Outcome("undo", [r.candidate_id for r in rows], undo_batch,
                   first.previous_status or "")


def history(store: Store, candidate_id: int) -> list[ReviewEvent]:
    """A candidate's decisions, oldest first (ReviewError when there is no such candidate)."""
    _load(store, candidate_id)
    return store.reviews.reviews_of(candidate_id)

