"""What a reviewer looks at, as data (a candidate in context, a deal, an outcome), and where the web UI is."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.config import STAGE_RANK
from models.records import Entity
from models.registry import (
    Deal,
    DealCorrection,
    DealSource,
    DealStage,
    QueueEntry,
    ReviewEvent,
    StoryCopy,
    Triangulation,
    deal_number,
)
from pipeline.review.decisions import EDITABLE_FIELDS, Outcome, ReviewError
from pipeline.review.export import (
    RegistryRecord,
    csv_cell,
    csv_table,
    defuse,
    registry_record,
)
from pipeline.review.present import country_name, evidence_span, money
from pipeline.review.registry import (
    MergePreview,
    RegistryError,
    Suggestion,
    candidate_vendors,
    describe_correction,
    is_official,
    preview_merge,
    suggest_deals,
    triangulate,
    undo_problem,
)
from pipeline.storage import Store
from pipeline.storage.deal_query import DealQuery
from pipeline.storage.queue import sort_nulls_last

# Where `dealwatch serve` listens unless told otherwise.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def review_ui_hint(db_path: str | Path, has_reviewers: bool, prog: str = "dealwatch") -> str:
    """What to run to review a database in the browser (the demo prints it last); db_path as
    it may be shown (a URL without its password)."""
    db = f"--db {db_path} " if str(db_path) != "data/dealwatch.db" else ""
    first = "" if has_reviewers else f"`{prog} {db}user add NAME` (once), then "
    return (f"Review them in your browser: {first}`{prog} {db}serve` and open "
            f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/ (j/k to move, c/r/d to decide, ? for keys).")


def deal_label(store: Store, deal_id: int | None) -> str | None:
    """A deal's registry id (dw-000003), None when there is no such deal."""
    deal = store.registry.deal(deal_id) if deal_id is not None else None
    return deal.deal_id if deal else None


@dataclass(frozen=True)
class Evidence:
    """A candidate's evidence sentence, where it lies in the article, and the text around it."""

    sentence: str
    start: int | None  # the offsets the detector stored
    end: int | None
    span: tuple[int, int] | None  # where the sentence is in the article text; None: not found
    before: str = ""  # the text before and after it (whitespace collapsed), when found
    after: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "start": self.start, "end": self.end,
                "before": self.before, "after": self.after}


def evidence_in_context(candidate: QueueEntry, width: int = 240) -> Evidence:
    """The evidence sentence with the text around it, when the offsets point at it."""
    text = candidate.article_text or ""
    span = evidence_span(text, candidate.sentence, candidate.start, candidate.end)
    if span is None:
        return Evidence(candidate.sentence, candidate.start, candidate.end, None)
    start, end = span
    return Evidence(candidate.sentence, candidate.start, candidate.end, span,
                    " ".join(text[max(0, start - width):start].split()),
                    " ".join(text[end:end + width].split()))


@dataclass(frozen=True)
class CandidateView:
    """One candidate as a reviewer looks at it, in the CLI (`review show`) and on its web page."""

    candidate: QueueEntry  # with its article, its text and the copies of its story
    evidence: Evidence
    entities: list[Entity]  # tagged in its article, in text order
    group: list[int]  # the candidates decided with it: it and its story's copies, by id
    suggestions: list[Suggestion]  # registry deals it may belong to, best first; not its own
    history: list[ReviewEvent]  # its decisions, oldest first
    deal: Deal | None  # the deal a confirmation filed it under

    @property
    def other_copies(self) -> list[StoryCopy]:
        """The copies of its story besides the article it was found in."""
        c = self.candidate
        return [s for s in c.copies if s.article_id != c.article_id or s.copy != "article"]

    def to_dict(self) -> dict[str, Any]:
        """The view as `review show --json` gives it."""
        c = self.candidate
        return {
            "candidate": {
                "id": c.id, "status": c.status, "version": c.version,
                "kind": c.kind, "score": c.score,
                **{name: getattr(c, name) for name in EDITABLE_FIELDS},
                "country_name": country_name(c.country),
                "reviewed_by": c.reviewed_by, "reviewed_at": c.reviewed_at,
                "reason": c.reason, "note": c.note,
                "deal_id": self.deal.deal_id if self.deal else None, "signals": c.signals,
                "reasons": c.reasons or [], "queued": bool(c.queued),
            },
            "article": {name: getattr(c, name) for name in (
                "article_id", "title", "url", "canonical_url", "published", "site", "author",
                "language", "language_declared", "language_source", "cluster_id")},
            "evidence": self.evidence.to_dict(),
            "entities": [{"label": e.label, "ent_id": e.id, "text": e.text, "start": e.start,
                          "end": e.end} for e in self.entities],
            "copies": [copy.to_dict() for copy in self.other_copies],
            "suggestions": [{
                "deal_id": s.deal.deal_id, "score": round(s.score, 2), "why": s.why,
                "counterpart": s.deal.counterpart, "deal_types": s.deal.deal_types,
                "stage": s.deal.stage, "first_reported": s.deal.first_reported,
                "last_reported": s.deal.last_reported,
            } for s in self.suggestions],
            "history": [event.to_dict() for event in self.history],
        }


def candidate_view(store: Store, candidate_id: int) -> CandidateView:
    """One candidate with its article, evidence in context, entities, copies, the registry deals
    it may belong to and its decision history, read at one moment (ReviewError when there is no
    such candidate)."""
    with store.snapshot():
        candidate = store.candidates.candidate(candidate_id)
        if candidate is None:
            raise ReviewError(f"no candidate #{candidate_id}")
        store.candidates.attach_copies([candidate])
        deal = store.registry.deal(candidate.deal_id) if candidate.deal_id is not None else None
        # Its own deal is no suggestion: confirming it again would file it where it is.
        suggestions = [s for s in suggest_deals(store, candidate) if s.deal.id != candidate.deal_id]
        return CandidateView(
            candidate, evidence_in_context(candidate),
            store.articles.entities_of(candidate.article_id),
            store.candidates.cluster_group(candidate), suggestions,
            store.reviews.reviews_of(candidate_id), deal)


def outcome_view(store: Store, outcome: Outcome) -> dict[str, Any]:
    """A decision's outcome as scripts read it: the deal by its registry id."""
    return {
        "decision": outcome.decision, "status": outcome.status,
        "candidate_ids": outcome.candidate_ids, "deal_id": deal_label(store, outcome.deal_id),
        "batch": outcome.batch, "versions": {str(k): v for k, v in outcome.versions.items()},
    }


@dataclass(frozen=True)
class CorrectionEntry:
    """A registry correction as a deal's history shows it."""

    correction: DealCorrection
    text: str  # "the merge of dw-000002 into dw-000001"
    undone: bool  # taken back since

    def line(self) -> str:
        c = self.correction
        return (f"{c.corrected_at}  {c.reviewer}: {self.text}"
                + (" (undone)" if self.undone else ""))


def correction_entries(corrections: list[DealCorrection]) -> list[CorrectionEntry]:
    """A deal's corrections, oldest first, each marked when an undo took it back (the undo rows
    themselves are that mark)."""
    undone = {c.undoes for c in corrections if c.action == "undo"}
    return [CorrectionEntry(c, describe_correction(c), c.id in undone)
            for c in corrections if c.action != "undo"]


@dataclass(frozen=True)
class DealView:
    """One deal as a reviewer looks at it, in the CLI (`deals show`) and on its web page."""

    deal: Deal
    record: RegistryRecord  # the registry record, as exported
    sources: list[DealSource]
    stages: list[DealStage]  # its stage history, oldest first
    merged_into: str | None  # the registry id of the deal it was merged into, if it was
    similar: list[Deal]  # other live deals of its vendors in its country: what it may merge with
    corrections: list[CorrectionEntry]  # merges, splits and edits that changed it, oldest first
    undoable: CorrectionEntry | None = None  # the viewer's last correction, when it changed this
    triangulation: Triangulation | None = None  # how well its sources attest it
    official: frozenset[int] = frozenset()  # its sources that are official statements (ids)

    @property
    def candidates(self) -> dict[str | None, list[int]]:
        """Source URL -> the candidates filed under it."""
        out: dict[str | None, list[int]] = {}
        for source in self.sources:
            out.setdefault(source.url, []).append(source.candidate_id)
        return out


def deal_view(store: Store, deal_id: int, reviewer: str | None = None,
              official: Collection[str] = ()) -> DealView:
    """One deal as the registry records it, with its sources, its stages, its corrections and
    the deals it may be merged with, read at one moment (RegistryError when there is no such
    deal). reviewer: who looks (their last correction, when it changed this deal, is undoable).
    official: the configured sources marked official (`official_source_ids`)."""
    with store.snapshot():
        deal = store.registry.deal(deal_id)
        if deal is None:
            raise RegistryError(f"no deal {deal_number(deal_id)} in the registry")
        sources, stages = store.registry.deal_sources(deal_id), store.registry.deal_stages(deal_id)
        similar = [d for d in store.registry.deals_like(candidate_vendors(deal), deal.country)
                   if d.id != deal_id]
        corrections = correction_entries(store.registry.corrections_of(deal_id))
        last = store.registry.last_correction(reviewer) if reviewer else None
        undoable = next((e for e in corrections if last and e.correction.id == last.id
                         and undo_problem(store, e.correction) is None), None)
        return DealView(deal, registry_record(deal, sources, stages, official),
                        sources, stages, deal_label(store, deal.merged_into), similar,
                        corrections, undoable, triangulate(sources, official, deal),
                        frozenset(s.candidate_id for s in sources if is_official(s, official)))


@dataclass(frozen=True)
class WeighedDeal:
    """A deal in the deals list, with how well its sources attest it."""

    deal: Deal
    triangulation: Triangulation


def _lower(text: str | None) -> str | None:
    return text.casefold() if text else None


# The deals list's orders (DealQuery.sort): each a deal's value in that column; deals without
# one come last either way, and ties go by id.
DEAL_SORTS: dict[str, Callable[[WeighedDeal], Any]] = {
    "deal_id": lambda w: w.deal.id,
    "vendor": lambda w: _lower(next(iter(candidate_vendors(w.deal)), None)),
    "country": lambda w: _lower(country_name(w.deal.country) or w.deal.country),
    "counterpart": lambda w: _lower(w.deal.counterpart),
    "type": lambda w: w.deal.deal_types[0] if w.deal.deal_types else w.deal.deal_type,
    "stage": lambda w: STAGE_RANK.get(w.deal.stage or ""),
    "confidence": lambda w: w.triangulation.confidence,
    "sources": lambda w: w.triangulation.sources,
    "independent": lambda w: w.triangulation.independent_sources,
    "first_reported": lambda w: w.deal.first_reported,
    "last_reported": lambda w: w.deal.last_reported,
}


@dataclass(frozen=True)
class DealListing:
    """The deals a DealQuery finds, in its order, and how many the registry holds."""

    deals: list[WeighedDeal]
    total: int  # live deals in the registry
    records: list[RegistryRecord] = field(default_factory=list)  # when asked: as exported

    def __len__(self) -> int:
        return len(self.deals)


def deal_listing(store: Store, query: DealQuery | None = None, official: Collection[str] = (),
                 records: bool = False) -> DealListing:
    """The live deals a query finds, each with its triangulation, in the query's order, read at
    one moment; with records, each as its registry record too (what `export` writes).
    official: the configured sources marked official (`official_source_ids`)."""
    query = query or DealQuery()
    with store.snapshot():
        deals = store.registry.find_deals(query)
        # a short list reads its own deals' sources; a long one every live deal's, in one go
        ids = [d.id for d in deals] if len(deals) <= 500 else None
        sources = store.registry.sources_by_deal(ids)
        stages = store.registry.stages_by_deal(ids) if records else {}
        total = store.registry.count_deals()
    weighed = [WeighedDeal(deal, triangulate(sources.get(deal.id, []), official, deal))
               for deal in deals]
    weighed = sort_nulls_last([w for w in weighed if not query.confidence
                               or w.triangulation.confidence in query.confidence],
                              DEAL_SORTS[query.sort], query.descending)
    return DealListing(weighed, total, [
        registry_record(w.deal, sources.get(w.deal.id, []), stages.get(w.deal.id, []), official)
        for w in weighed] if records else [])


# A queue entry as `queue --json` (and the queue's download) gives it, in this order.
QUEUE_JSON_FIELDS = (
    "id", "status", "kind", "score", "vendor", "vendors", "country", "counterpart",
    "counterpart_type", "deal_type", "deal_types", "stage", "value", "currency", "year",
    "sentence", "start", "end", "url", "title", "published", "site", "article_id", "cluster_id",
    "copies", "reasons", "queued", "language",
)


# After an entry's own fields: the deal a confirmation would file it under (`known_matches`),
# by its registry id; null when none (or when it is decided).
MATCHES_FIELD = "matches"


def entry_json(entry: QueueEntry, names: tuple[str, ...] = QUEUE_JSON_FIELDS) -> dict[str, Any]:
    """A queue entry as `--json` gives it: these fields, in this order."""
    return {name: [c.to_dict() for c in entry.copies] if name == "copies" else getattr(entry, name)
            for name in names}


def queue_json(entries: Iterable[QueueEntry], matches: Mapping[int, Deal],
               names: tuple[str, ...] = QUEUE_JSON_FIELDS) -> list[dict[str, Any]]:
    """Queue entries as `queue --json`, `review list --json` and the queue's download give
    them: these fields in this order, then `matches` (MATCHES_FIELD). matches: known_matches."""
    return [{**entry_json(entry, names),
             MATCHES_FIELD: match.deal_id if (match := matches.get(entry.id)) else None}
            for entry in entries]


def queue_csv(entries: list[QueueEntry], matches: Mapping[int, Deal]) -> bytes:
    """Queue entries as CSV, one column per field of queue_json (`copies`: their URLs),
    written as the registry's export writes its cells."""
    rows = []
    for entry, row in zip(entries, queue_json(entries, matches), strict=True):
        row["copies"] = [c.url or "" for c in entry.copies]
        rows.append({name: defuse(csv_cell(value)) if isinstance(value, str | list)
                     else csv_cell(value) for name, value in row.items()})
    return csv_table(rows, (*QUEUE_JSON_FIELDS, MATCHES_FIELD))


def field_text(value: Any) -> str:
    """A field value in a sentence: lists joined, numbers plain, nothing as "-"."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:g}"
    return "-" if value in (None, "") else str(value)


def _place(code: Any) -> str:
    name = country_name(code) if isinstance(code, str) else None
    return f"{name} ({code})" if name else field_text(code)


@dataclass(frozen=True)
class MergeView:
    """A merge before it is done, as the CLI's prompt and the web's confirmation page show it."""

    preview: MergePreview
    moves: str  # what moves where, in a sentence
    changes: list[str]  # "stage: mou → signed", the kept deal's fields that change
    warnings: list[str]  # where the two deals disagree, the serious ones first

    @property
    def serious(self) -> bool:
        """The countries or the vendors differ: most likely two deals. Warn harder."""
        return bool(self.preview.serious)

    @property
    def versions(self) -> dict[int, int]:
        """The versions shown: a deal changed after this was shown is not merged unseen."""
        return {d.id: d.version for d in (self.preview.keep, self.preview.absorb)}


def merge_view(store: Store, keep: int, absorb: int) -> MergeView:
    """What merging `absorb` into `keep` would do, in words (RegistryError when it cannot)."""
    p = preview_merge(store, keep, absorb)
    a, k = p.absorb.deal_id, p.keep.deal_id
    moves = (f"{a} is merged into {k}: its {len(p.sources)} source(s) and {len(p.stages)} stage "
             f"report(s) move to {k}, and {a} stays only as \"merged into {k}\" (exports leave "
             "it out; a push tells the endpoint).")
    changes = [f"{name}: {field_text(before)} → {field_text(after)}"
               for name, (before, after) in p.changes.items()]
    described = {
        "country": lambda x, y: f"The countries differ: {k} is in {_place(x)}, {a} in "
                                f"{_place(y)}. A deal is one vendor's project in one country.",
        "vendors": lambda x, y: f"The vendors differ: {k} is {field_text(x)}'s, {a} is {field_text(y)}'s.",
        "counterpart": lambda x, y: f"The counterparts differ: {field_text(x)} and {field_text(y)}.",
        "deal_types": lambda x, y: f"The kinds of project differ: {field_text(x)} and {field_text(y)}.",
        "year": lambda x, y: f"The years are far apart: {x} and {y}.",
    }
    order = [*p.serious, *(name for name in p.differences if name not in p.serious)]
    warnings = [described[name](*p.differences[name]) for name in order]
    return MergeView(p, moves, changes, warnings)


def deal_summary(deal: Deal) -> str:
    """A deal in one line: "dw-000001 huawei, KE, Ministry of ICT; cloud; signed; USD 120 million"."""
    parts = [", ".join(x for x in (", ".join(candidate_vendors(deal)), deal.country,
                                   deal.counterpart) if x),
             ", ".join(deal.deal_types or []), deal.stage or "", money(deal.value, deal.currency)]
    return f"{deal.deal_id} " + "; ".join(p for p in parts if p)
