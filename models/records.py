"""Typed domain records that flow between the stages: pages, articles, entities, candidates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Page:
    """One fetch result, as a spider yields it and the store keeps it."""

    url: str
    source_id: str
    status: int
    final_url: str | None = None
    role: str = "article"  # article | feed | sitemap | listing
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    fetched_at: str | None = None
    error: str | None = None  # why a fetch failed or was skipped (None when it worked)
    referrer: str | None = None
    # What a feed or sitemap entry said about the article before it was fetched.
    listed_title: str | None = None
    listed_date: str | None = None


@dataclass(slots=True)
class PageCheck:
    """A stored page fetched again without storing it anew (store.pages.record_check).

    status 304: not modified; 200: the same body again; anything else (0: no response): the
    fetch failed, and the good copy stored before is kept.
    """

    url: str
    source_id: str
    status: int


@dataclass(slots=True)
class Article:
    """What extraction found in one page: main text plus metadata."""

    url: str
    canonical_url: str
    text: str
    text_hash: str
    title: str | None = None
    author: str | None = None
    published: str | None = None
    site: str | None = None
    # ISO 639-1: the page's declared language confirmed by identification (pipeline.language),
    # what the page declared, where the language came from and how sure the identifier was
    language: str | None = None
    language_declared: str | None = None
    language_source: str | None = None  # declared | identified | declared+identified | unknown
    language_confidence: float | None = None


@dataclass(slots=True)
class Entity:
    text: str
    label: str  # VENDOR | COUNTRY | AGENCY | ORG (+ the statistical model's labels)
    start: int  # character offsets into the article text
    end: int
    id: str | None = None  # watchlist id for VENDOR/AGENCY/ORG entries, ISO alpha-2 for COUNTRY

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "id": self.id, "start": self.start,
                "end": self.end}


@dataclass(slots=True)
class Candidate:
    """A possible deal mention (or an aggregate statement) with its evidence."""

    kind: str  # deal | aggregate
    vendor: str | None
    vendors: list[str]
    country: str | None
    counterpart: str | None
    counterpart_type: str | None
    deal_type: str | None
    deal_types: list[str]
    stage: str
    value: float | None
    currency: str | None
    year: int | None
    score: float
    sentence: str
    start: int
    end: int
    signals: dict[str, Any] = field(default_factory=dict)  # why it scored what it did
    reasons: list[str] = field(default_factory=list)  # what drove the score, in words
    queued: bool = True  # shows in the queue's default view (score reaches the queue threshold)

    CONTRACT_FIELDS = (
        "kind", "vendor", "vendors", "country", "counterpart", "counterpart_type", "deal_type",
        "deal_types", "stage", "value", "currency", "year", "score", "reasons", "queued",
        "sentence", "start", "end",
    )

    def to_json(self, with_signals: bool = False) -> dict[str, Any]:
        """The `dealwatch analyze` form of a candidate (DESIGN.md), optionally with signals."""
        data = asdict(self)
        out = {name: data[name] for name in self.CONTRACT_FIELDS}
        if with_signals:
            out["signals"] = data["signals"]
        return out


@dataclass(frozen=True)
class Passage:
    """A text with the headline it ran under: the headline is read as context (the country, the
    kind of deal, the vendor a story is about), never as evidence of its own. Offsets in the
    analysis are offsets into `text`."""

    text: str
    title: str | None = None
    # ISO 639-1 code the text is known to be in (a page's declared and confirmed language,
    # `analyze --lang`), or None: the analyser identifies it from the text
    language: str | None = None


def passage_of(record: Mapping[str, Any]) -> Passage:
    """The passage of a labelled or `analyze --jsonl` record: its "text" and, when it has them,
    its "title" and "language" strings."""
    title, language = record.get("title"), record.get("language")
    return Passage(record["text"], title if isinstance(title, str) else None,
                   language if isinstance(language, str) else None)


@dataclass(slots=True)
class FetchedPage:
    """A stored page waiting to be processed: what extraction needs of it."""

    id: int
    url: str
    source_id: str | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    final_url: str | None = None
    listed_title: str | None = None
    listed_date: str | None = None


@dataclass(slots=True)
class StoredArticle:
    """An article as stored: its identity, text, headline and language (what re-analysis and the
    duplicate check read)."""

    id: int
    canonical_url: str
    url: str
    text: str
    source_id: str | None = None
    title: str | None = None
    language: str | None = None
    language_declared: str | None = None
    language_source: str | None = None
    analyser: str | None = None  # the analyser version that last analysed it (None: never)


@dataclass(frozen=True, slots=True)
class ProcessProgress:
    """How far a processing run has got with one source's pages (pipeline.jobs.process sends
    one when the run starts, one after each batch that held the source's pages, and a finished
    one once every page counted at the start is done)."""

    source: str | None  # None: pages stored without a source
    pages: int  # to process in this run, counted when it started
    done: int = 0  # of which processed
    articles: int = 0  # pages that gave an article (a new one, or the same text again)
    candidates: int = 0  # deal candidates found in their articles
    candidates_new: int = 0  # of which not found before
    not_article: int = 0  # pages skipped: no article in them
    blocked: int = 0  # pages skipped: a bot check or a consent wall
    duplicates: int = 0  # pages skipped: the same text as an article already stored
    failed: int = 0  # pages that broke extraction, or whose article broke analysis (it is
    #                  stored and counted in articles; no later run analyses it again)
    failure_reason: str | None = None  # the commonest, without its details
    finished: bool = False

    @property
    def skipped(self) -> int:
        return self.not_article + self.blocked + self.duplicates


OnProcessProgress = Callable[[ProcessProgress], None]
