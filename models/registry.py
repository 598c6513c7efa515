"""Typed records of reviewing and of the registry: queue entries, deals, their sources and stages,
decisions, runs, reviewers.

The storage repositories turn rows into these at their edge; review, export, the web app and the
CLI take and give records, never `dict` rows. Dates are ISO 8601 text in UTC, as stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

# The fields a reviewer corrects and a confirmation files: a candidate's and a deal's alike.
DEAL_FIELDS = ("vendor", "vendors", "country", "counterpart", "counterpart_type", "deal_type",
               "deal_types", "stage", "value", "currency", "year")


# What a reviewer edits on a deal: the DEAL_FIELDS and the deal's notes.
DEAL_EDIT_FIELDS = (*DEAL_FIELDS, "notes")
# A deal's columns that corrections change and their undo puts back.
SNAPSHOT_FIELDS = (*DEAL_FIELDS, "first_reported", "last_reported", "notes", "confirmed_by",
                   "confirmed_at", "merged_into")
MAX_ROW_ID = 2**63  # SQLite integers are signed 64-bit: a larger number names no row


class Record:
    """What every record here can do: give itself as a dict (the JSON a command prints)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


def deal_number(deal_id: int) -> str:
    """The public name of a deal: dw- and six digits (dw-000042)."""
    return f"dw-{deal_id:06d}"


def parse_row_id(value: str) -> int | None:
    """A row id or version from a URL, a form or an argument: ASCII digits below 2**63, else
    None ("²" is a digit to str.isdigit(); a long run would take int() a while, then overflow
    SQLite)."""
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 19:
        return None
    number = int(value)
    return number if number < MAX_ROW_ID else None


def parse_deal_number(text: str) -> int | None:
    """The row id a deal's name gives: dw-000042, DW-42 or a bare 42 (what people type and old
    links carry); None for anything that can name no deal."""
    number = parse_row_id(text.strip().lower().removeprefix("dw-"))
    return number if number else None


def report_number(report_id: int) -> str:
    """The public name of a report (an aggregate claim): rp- and six digits (rp-000007)."""
    return f"rp-{report_id:06d}"


def parse_report_number(text: str) -> int | None:
    """The row id a report's name gives: rp-000007, RP-7 or a bare 7; None for anything that
    can name no report."""
    number = parse_row_id(text.strip().lower().removeprefix("rp-"))
    return number if number else None


@dataclass(slots=True)
class StoryCopy(Record):
    """One copy of a syndicated story: an article of its near-duplicate cluster, or a page that
    repeated one of them word for word."""

    article_id: int
    url: str | None = None
    site: str | None = None
    title: str | None = None
    published: str | None = None
    copy: str = "article"  # article | exact duplicate


@dataclass(slots=True)
class QueueEntry(Record):
    """A stored candidate as reviewers see it: what detection found, where its review stands,
    and its article's metadata (`store.candidates.queue()`); `candidate()` adds the article's
    author, language evidence and text. `copies`: every copy of its story, once attached."""

    id: int
    article_id: int
    kind: str  # deal | aggregate
    score: float
    sentence: str
    key: str | None = None
    vendor: str | None = None
    vendors: list[str] = field(default_factory=list)
    country: str | None = None
    counterpart: str | None = None
    counterpart_type: str | None = None
    deal_type: str | None = None
    deal_types: list[str] = field(default_factory=list)
    stage: str | None = None
    value: float | None = None
    currency: str | None = None
    year: int | None = None
    start: int | None = None
    end: int | None = None
    signals: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)  # what drove the score
    queued: bool = True  # shown in the queue's default view (scored at the threshold or above)
    # the review
    status: str = "pending"  # pending | confirmed | rejected | deferred
    version: int = 1  # goes up with every change (a decision on an older one is a conflict)
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    reason: str | None = None
    note: str | None = None
    deal_id: int | None = None  # the deal a confirmation filed it under
    created_at: str | None = None
    updated_at: str | None = None
    report_id: int | None = None  # the report a confirmed aggregate was filed as
    # its article
    url: str | None = None
    canonical_url: str | None = None
    title: str | None = None
    published: str | None = None
    site: str | None = None
    source_id: str | None = None
    language: str | None = None
    cluster_id: int | None = None
    author: str | None = None
    language_declared: str | None = None
    language_source: str | None = None
    extracted_at: str | None = None
    article_text: str | None = None
    copies: list[StoryCopy] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """The DEAL_FIELDS, as a confirmation files them."""
        return {name: getattr(self, name) for name in DEAL_FIELDS}


@dataclass(slots=True)
class Deal(Record):
    """One real-world deal: a vendor's project with one counterpart in one country."""

    id: int
    deal_id: str  # dw-000042: the name exports, pushes and people use
    vendor: str | None = None
    vendors: list[str] = field(default_factory=list)
    country: str | None = None
    counterpart: str | None = None
    counterpart_type: str | None = None
    deal_type: str | None = None
    deal_types: list[str] = field(default_factory=list)
    stage: str | None = None
    value: float | None = None
    currency: str | None = None
    year: int | None = None
    first_reported: str | None = None
    last_reported: str | None = None
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    notes: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    version: int = 1  # goes up with every change (what `export --since` and pushes go by)
    merged_into: int | None = None  # the deal this one was merged into; None while it lives
    created_by_batch: str | None = None  # the decision that created it (undo takes it back)
    # a known deal, imported from another registry (`deals import`); None for the others
    external_id: str | None = None  # its id in that registry: what a re-import goes by
    source_url: str | None = None  # that registry's source for it (counts as one source)
    imported_from: str | None = None  # the file it was last imported from (its name)
    imported_at: str | None = None  # when
    # the known deals merged into this one (directly or through another merge), oldest first:
    # their registries attest it too (store.registry fills it in; no column of its own)
    merged_known: list[Deal] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """The DEAL_FIELDS, as a confirmation's values are given."""
        return {name: getattr(self, name) for name in DEAL_FIELDS}

    def known_deals(self) -> list[Deal]:
        """Every other registry's record of this deal: the deal itself when it was imported,
        then the known deals merged into it. Their source_urls count among its sources, and
        a merge or its undoing moves them with the deal they belong to."""
        return [deal for deal in (self, *self.merged_known) if deal.external_id]


@dataclass(slots=True)
class DealSource(Record):
    """One report of a deal: a confirmed candidate and the article it came from.

    (Named DealSource because `models.config.Source` is a configured news source.)
    """

    deal_id: int
    candidate_id: int
    article_id: int | None = None
    url: str | None = None
    title: str | None = None
    published: str | None = None
    sentence: str | None = None
    added_at: str | None = None
    batch: str | None = None  # the decision that filed it (undo takes it out)
    # from the candidate and the article
    stage: str | None = None
    kind: str | None = None
    deal_types: list[str] = field(default_factory=list)
    site: str | None = None
    candidate_status: str | None = None
    source_id: str | None = None  # the configured source its article was crawled from
    cluster_id: int | None = None  # its article's near-duplicate cluster (syndicated copies)
    official: bool | None = None  # a reviewer's word: an official statement or not; None: the
    # configured source's `official` decides

    @property
    def reported(self) -> str | None:
        """When the source reported the deal: its article's date, else when it was filed."""
        return self.published or self.added_at


# The confidence grades, best first (README, "Triangulation and confidence").
CONFIDENCE_GRADES = ("A", "B", "C")


@dataclass(frozen=True, slots=True)
class Triangulation(Record):
    """How well a deal is attested: its sources, the independent ones among them (distinct
    publishers), whether any is an official statement, when it was first and last reported,
    and the confidence grade these give (`review.registry.triangulate`)."""

    sources: int
    independent_sources: int
    official_source: bool
    first_reported: str | None
    last_reported: str | None
    confidence: str  # one of CONFIDENCE_GRADES


@dataclass(slots=True)
class DealStage(Record):
    """A stage a deal was reported at (its history; the deal's stage is the latest)."""

    id: int
    deal_id: int
    stage: str
    recorded_at: str  # when a reviewer's decision recorded it
    reported_at: str | None = None  # when its source reported it
    candidate_id: int | None = None  # the source that reported it (None: set by hand)
    reviewer: str | None = None
    batch: str | None = None


@dataclass(slots=True)
class NewReview(Record):
    """A decision on a candidate as it goes into the review audit (the store adds id and time)."""

    candidate_id: int
    reviewer: str
    decision: str  # confirm | reject | defer | edit | undo
    reason: str | None = None
    edits: dict[str, Any] | None = None  # field -> [before, after]
    note: str | None = None
    previous_status: str | None = None
    batch: str | None = None  # the decision it belongs to (one decision may touch copies)
    undoes: str | None = None  # the batch an undo took back
    previous: dict[str, Any] | None = None  # the candidate's fields before the decision
    version: int | None = None  # the candidate's version after it
    deal_id: int | None = None  # the deal a confirmation filed it under
    report_id: int | None = None  # the report a confirmed aggregate was filed as


# The reviews table's columns, in its order: what `review show --json` gives for each event.
REVIEW_COLUMNS = ("id", "candidate_id", "reviewer", "decided_at", "decision", "reason", "edits",
                  "note", "previous_status", "batch", "undoes", "previous", "version", "deal_id",
                  "report_id")


@dataclass(slots=True, kw_only=True)
class ReviewEvent(NewReview):
    """One row of the append-only review audit: a decision on a candidate, or its undoing, as
    stored (a NewReview with the id and time the store gave it)."""

    id: int
    decided_at: str

    def to_dict(self) -> dict[str, Any]:
        """The audit row, its columns in the table's order (what `review show --json` gives)."""
        return {name: getattr(self, name) for name in REVIEW_COLUMNS}


@dataclass(slots=True)
class NewCorrection(Record):
    """A reviewer's correction of the registry as it goes into the deal audit (the store adds
    id and time): a merge, a split, an edit, or the undoing of one of them.

    Deal ids are row ids; `before` and `versions` are keyed by them as text (JSON keys).
    """

    reviewer: str
    action: str  # merge | split | edit | undo
    deal_id: int  # merge: the deal kept; split: the deal split; edit: the deal edited
    other_deal_id: int | None = None  # merge: the deal absorbed; split: the deal split off
    sources: list[int] = field(default_factory=list)  # the sources moved (candidate ids)
    stages: list[int] = field(default_factory=list)  # the stage reports moved with them (ids)
    changes: dict[str, Any] = field(default_factory=dict)  # field -> [before, after] on deal_id
    before: dict[str, dict[str, Any]] = field(default_factory=dict)  # deal -> SNAPSHOT_FIELDS
    versions: dict[str, int] = field(default_factory=dict)  # deal -> its version after this
    batch: str = ""  # marks the stage reports an edit set by hand (undo takes them out)
    reverses: int | None = None  # a split: the merge it took back
    undoes: int | None = None  # an undo: the correction it took back


@dataclass(slots=True, kw_only=True)
class DealCorrection(NewCorrection):
    """One row of the append-only deal audit, as stored."""

    id: int
    corrected_at: str
    after_review: int = 0  # the newest `reviews` row then: orders it among review decisions


@dataclass(slots=True)
class Run(Record):
    """One crawl, process or nightly run, as recorded."""

    id: int
    kind: str  # crawl | process | run
    started_at: str
    finished_at: str | None = None
    outcome: str = "running"  # running | ok | partial | failed | interrupted | aborted
    sources: list[str] = field(default_factory=list)  # the source ids it was asked to crawl
    counters: dict[str, Any] = field(default_factory=dict)  # crawl and process, per source
    message: str | None = None
    pid: int | None = None


@dataclass(slots=True)
class Reviewer(Record):
    """A reviewer account as `dealwatch user list` shows it; never its password hash."""

    id: int
    name: str
    created_at: str
    disabled: bool = False
    # the last login to the web UI; None: never (or not since logins are recorded)
    last_login_at: str | None = None


R = TypeVar("R")


def record_of(cls: type[R], row: Mapping[str, Any]) -> R:
    """A record of `cls` from a row (JSON columns decoded): the columns it has fields for, the
    rest left out; a NULL list or dict column is an empty one."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in row:
            continue
        value = row[f.name]
        if value is None and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        values[f.name] = value
    return cls(**values)


# --- reports: aggregate claims ("70 deals in 41 countries"), kept apart from deals -----------


@dataclass(slots=True)
class ClaimCount(Record):
    """One count a claim states: a number and what it counts ("70 deals"); `text` is how the
    sentence writes it ("70 smart-city deals")."""

    count: int
    noun: str
    text: str


@dataclass(slots=True)
class Report(Record):
    """A confirmed aggregate claim: what a report or outlet says of many deals at once, with the
    counts and scope its sentence states. Not a deal: it names no one counterpart or country."""

    id: int
    report_id: str  # rp-000007: the name exports and people use
    candidate_id: int  # the candidate it was filed from (the lead of its story's copies)
    sentence: str  # the claim, as the article writes it
    article_id: int | None = None
    vendor: str | None = None
    vendors: list[str] = field(default_factory=list)
    counts: list[ClaimCount] = field(default_factory=list)
    deals: int | None = None  # the number of deals it counts, where it says
    countries: int | None = None  # the number of countries it spans, where it says
    scope: str | None = None  # the region it names, "worldwide", or None
    deal_types: list[str] = field(default_factory=list)
    year: int | None = None
    outlet: str | None = None  # the site or publisher behind the article
    url: str | None = None
    title: str | None = None
    published: str | None = None
    notes: str | None = None
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    batch: str | None = None  # the decision that filed it (review undo takes it back)
    version: int = 1
    created_at: str | None = None
    updated_at: str | None = None
    # when a decision took it back (its last source rejected, its confirmation undone): it keeps
    # its number and fields, and undoing that decision or confirming its story again restores it
    withdrawn_at: str | None = None

    def __post_init__(self) -> None:
        # from a row, the counts come as JSON objects
        self.counts = [c if isinstance(c, ClaimCount) else ClaimCount(**c) for c in self.counts]


@dataclass(slots=True)
class ReportSource(Record):
    """A candidate a report was filed from: one copy of the story, with its article."""

    candidate_id: int
    article_id: int
    status: str
    url: str | None = None
    title: str | None = None
    site: str | None = None
    published: str | None = None
    sentence: str | None = None
