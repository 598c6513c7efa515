"""The review queue's one query type, and the SQL conditions it makes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


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


# What FTS5's unicode61 tokenizer keeps as a token: letters and digits (an underscore splits).
_WORD = re.compile(r"[^\W_]+")


def fts_terms(text: str) -> str | None:
    """A search box's text as an FTS5 query: each word quoted, so nothing a user types (quotes,
    `*`, NEAR, AND, a leading -, column filters) is read as query syntax; all words must match.
    None when the text has no word at all."""
    words = _WORD.findall(text)
    return " ".join(f'"{w}"' for w in words) if words else None


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that finds the text anywhere, its % and _ literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def queue_where(query: QueueQuery, c: str, a: str) -> tuple[list[str], list[Any]]:
    """SQL conditions for a QueueQuery on candidate alias `c` and article alias `a`."""
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
        where.append(f"({c}.deal_type = ? OR {c}.deal_types LIKE ? ESCAPE '\\')")
        params += [query.deal_type, like_pattern(json.dumps(query.deal_type))]
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
        terms = fts_terms(query.search)
        sentence = f"{c}.sentence LIKE ? ESCAPE '\\'"
        if terms is None:
            where.append(sentence)
            params.append(like_pattern(query.search.strip()))
        else:
            where.append(f"({c}.article_id IN (SELECT rowid FROM articles_fts "
                         f"WHERE articles_fts MATCH ?) OR {sentence})")
            params += [terms, like_pattern(query.search.strip())]
    return where, params
