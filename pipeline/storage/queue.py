"""The review queue's one query type, and the SQL conditions it makes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from models.config import STAGE_RANK
from models.registry import QueueEntry
from pipeline.storage.dialect import Dialect


@dataclass(frozen=True)
class QueueQuery:
    """The review queue's filters (None: any). Dates are YYYY-MM-DD, on the article's date."""

    status: str | None = "pending"
    kind: str | None = None
    vendor: str | None = None
    country: str | None = None
    deal_type: str | None = None
    stage: str | None = None
    source: str | None = None
    language: str | None = None  # the article's (ISO 639-1)
    date_from: str | None = None
    date_to: str | None = None
    # The default view shows pending candidates whose score reaches the queue threshold
    # (`queued`); hidden=True shows the ones below it too. min_score: only scores at or above.
    hidden: bool = False
    min_score: float | None = None
    # Full-text search: words that must all be in the article (title or text; the porter
    # stemmer's forms), or the text as typed anywhere in the evidence sentence.
    search: str | None = None
    # How many queue entries Candidates.queue returns (None: all); queue_page takes a page size.
    limit: int | None = None
    # The order: a QUEUE_SORTS key, and descending or not (None: the key's own order); ties go
    # by candidate id. Pages are keyset cursors on (the sort column's value, id).
    sort: str = "score"
    descending: bool | None = None

    @property
    def order(self) -> QueueSort:
        return QUEUE_SORTS[self.sort]

    @property
    def desc(self) -> bool:
        return self.order.descending if self.descending is None else self.descending


# A place in the queue: the sort column's value at an entry (None where it has none), its id.
Cursor = tuple[Any, int]


@dataclass(frozen=True)
class QueueSort:
    """A column the queue sorts by: its SQL on the candidate alias, the same value read from an
    entry (for cursors and merged pages), and its own order. Entries without a value (nullable)
    come last either way. Each key has an index per direction (schema migration 15)."""

    sql: Callable[[str], str]
    value: Callable[[QueueEntry], Any]
    descending: bool
    nullable: bool = True


QUEUE_SORTS: dict[str, QueueSort] = {
    "score": QueueSort(lambda c: f"{c}.score", lambda e: float(e.score), True, nullable=False),
    # the article's date, which its candidates carry (an index cannot reach into the article)
    "date": QueueSort(lambda c: f"{c}.published", lambda e: e.published, True),
    "vendor": QueueSort(lambda c: f"{c}.vendor", lambda e: e.vendor, False),
    "country": QueueSort(lambda c: f"{c}.country", lambda e: e.country, False),
    # a deal's life, not the alphabet: proposed, mou, signed, … (the stage names are constants;
    # the expression is the one migration 15 indexed, word for word)
    "stage": QueueSort(lambda c: f"CASE {c}.stage " + " ".join(
        f"WHEN '{stage}' THEN {rank}" for stage, rank in STAGE_RANK.items()) + " END",
        lambda e: STAGE_RANK.get(e.stage or ""), False),
}


def cursor_of(entry: QueueEntry, query: QueueQuery) -> Cursor:
    """Where an entry stands in the query's order."""
    return query.order.value(entry), int(entry.id)


@dataclass(frozen=True)
class Walk:
    """One stretch of the queue's order that an index walks without sorting: a condition, its
    parameters and the ORDER BY."""

    where: str
    params: list[Any]
    order: str


@dataclass(frozen=True)
class QueueCounts:
    """What a queue view counts besides its entries: candidates per status under its filters
    (all but the status; copies each count), and the pending ones below the threshold that it
    hides (none when it shows them)."""

    statuses: dict[str, int]
    hidden: int


def queue_walks(query: QueueQuery, c: str, after: Cursor | None = None,
                before: Cursor | None = None) -> list[Walk]:
    """The entries after a cursor (or from the top), or those before one (backwards: nearest
    first), as the walks that give them in order. An order with values missing is two stretches,
    the entries with a value (by value, then id) and then those without (by id), because
    SQLite indexes put NULL first and one ORDER BY with the NULLs last would sort every row."""
    sort, column = query.order, query.order.sql(c)
    backwards = after is None and before is not None
    desc = query.desc != backwards
    valued = Walk(f"{column} IS NOT NULL" if sort.nullable else "TRUE", [],
                  f"{column} {'DESC' if desc else 'ASC'}, {c}.id{' DESC' if backwards else ''}")
    missing = Walk(f"{column} IS NULL", [], f"{c}.id{' DESC' if backwards else ''}")
    cursor = after if after is not None else before
    if cursor is None:
        return [valued, missing] if sort.nullable else [valued]
    value, ident = cursor
    if value is None:  # a cursor among the entries without a value, which come last
        rest = Walk(f"{column} IS NULL AND {c}.id {'<' if backwards else '>'} ?", [ident],
                    missing.order)
        return [rest, valued] if backwards else [rest]
    op = "<" if desc else ">"
    near = Walk(f"{column} {op}= ? AND ({column} {op} ? OR {c}.id {'<' if backwards else '>'} ?)",
                [value, value, ident], valued.order)
    return [near, missing] if sort.nullable and not backwards else [near]


T = TypeVar("T")


def sort_nulls_last(items: list[T], value: Callable[[T], Any], descending: bool) -> list[T]:
    """Items (in id order) by their value, those without one last either way; ties keep their
    order (a stable sort, also reversed)."""
    present = sorted((i for i in items if value(i) is not None), key=value, reverse=descending)
    return present + [i for i in items if value(i) is None]


def sort_entries(entries: list[QueueEntry], query: QueueQuery) -> list[QueueEntry]:
    """Entries in the query's order, as queue_order puts them (pages merged in Python)."""
    return sort_nulls_last(sorted(entries, key=lambda e: e.id), query.order.value, query.desc)


# What FTS5's unicode61 tokenizer keeps as a token: letters and digits (an underscore splits).
_WORD = re.compile(r"[^\W_]+")


def fts_terms(text: str) -> list[str]:
    """A search box's words for the full-text index: letters and digits only, so nothing a user
    types (quotes, `*`, NEAR, AND, a leading -, column filters) is read as query syntax; all
    words must match (the dialect quotes them for its engine). None when it has no word."""
    return _WORD.findall(text)


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that finds the text anywhere, its % and _ literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(text: str, article: str | None, columns: Sequence[str], dialect: Dialect,
                     joined: str | None = None) -> tuple[str, list[Any]]:
    """A search box's text as one SQL condition (in brackets) and its parameters: the article
    whose id is `article` has all its words (FTS index; skipped when the text has no word, or
    article is None), or one of `columns` holds the text as typed (LIKE: part of a word too).
    `joined`: the alias of that article where the query joins it (Dialect.fts_match)."""
    terms = fts_terms(text) if article is not None else []
    conditions = [dialect.like(column) for column in columns]
    params: list[Any] = [like_pattern(text.strip())] * len(columns)
    if terms and article is not None:
        conditions.insert(0, dialect.fts_match(article, joined))
        params.insert(0, dialect.fts_param(terms))
    return f"({' OR '.join(conditions)})", params


def queue_where(query: QueueQuery, c: str, a: str, dialect: Dialect, per_row: bool = False
                ) -> tuple[list[str], list[Any]]:
    """SQL conditions for a QueueQuery on candidate alias `c` and article alias `a`. `per_row`:
    the conditions of a subquery run for each row (the queue's NOT EXISTS), where the search
    reads the joined article (Dialect.fts_match) rather than a list of the articles found."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", query.status), ("kind", query.kind),
                          ("vendor", query.vendor), ("country", query.country),
                          ("stage", query.stage)):
        if value is not None:
            where.append(f"{c}.{column} = ?")
            params.append(value)
    if query.deal_type is not None:
        # Any of the candidate's types, not only the first; deal_types is a JSON list of ids.
        where.append(f"({c}.deal_type = ? OR {dialect.json_has(f'{c}.deal_types')})")
        params += [query.deal_type, query.deal_type]
    if not query.hidden:
        # decided candidates stay in their lists whatever their score
        if query.status == "pending":
            where.append(f"{c}.queued = 1")
        elif query.status is None:
            where.append(f"({c}.queued = 1 OR {c}.status != 'pending')")
    if query.min_score is not None:
        where.append(f"{c}.score >= ?")
        params.append(query.min_score)
    if query.source is not None:
        where.append(f"{a}.source_id = ?")
        params.append(query.source)
    if query.language is not None:
        where.append(f"{a}.language = ?")
        params.append(query.language)
    if query.date_from is not None:
        where.append(f"substr({a}.published, 1, 10) >= ?")
        params.append(query.date_from)
    if query.date_to is not None:
        where.append(f"substr({a}.published, 1, 10) <= ?")
        params.append(query.date_to)
    if query.search is not None and query.search.strip():
        # The article through its FTS index; the evidence by LIKE, which finds what a word
        # index cannot (part of a word: "Safari" in "Safaricom", "5G" in "5G-ready"). The
        # evidence is a sentence of the article, so the words are in the index already.
        condition, found = search_condition(query.search, f"{c}.article_id", [f"{c}.sentence"],
                                            dialect, joined=a if per_row else None)
        where.append(condition)
        params += found
    return where, params
