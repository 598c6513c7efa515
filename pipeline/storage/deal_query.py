"""The deals list's one query type, and the SQL conditions it makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.storage.dialect import Dialect
from pipeline.storage.queue import search_condition


@dataclass(frozen=True)
class DealQuery:
    """The deals list's filters (None: any), search and order, for the CLI and the web UI.

    The registry's SQL applies the fields it stores (`Registry.find_deals`); the confidence
    grade is weighed from the sources when read, so the review layer filters by it and sorts
    (`pipeline.review.views.deal_listing`).
    """

    vendor: str | None = None  # any of the deal's vendors
    country: str | None = None
    deal_type: str | None = None  # any of the deal's types
    stage: str | None = None
    year: int | None = None
    # Words that must all be in an article of one of its sources (title or text, through the
    # FTS index), or the text as typed in one of its evidence sentences, its counterpart or its
    # notes.
    search: str | None = None
    confidence: tuple[str, ...] = ()  # grades (none: any)
    sort: str = "deal_id"  # a key of pipeline.review.views.DEAL_SORTS; ties go by id
    descending: bool = False

    @property
    def filtered(self) -> bool:
        """Any filter or search is set: the list may be shorter than the registry."""
        return any(v is not None for v in (self.vendor, self.country, self.deal_type,
                                           self.stage, self.year)) or bool(
            self.confidence or (self.search and self.search.strip()))


def deal_where(query: DealQuery, d: str, dialect: Dialect) -> tuple[list[str], list[Any]]:
    """SQL conditions for a DealQuery's stored fields on deal alias `d` (live deals only)."""
    where, params = [f"{d}.merged_into IS NULL"], []
    for column, value in (("country", query.country), ("stage", query.stage),
                          ("year", query.year)):
        if value is not None:
            where.append(f"{d}.{column} = ?")
            params.append(value)
    for single, plural, value in (("vendor", "vendors", query.vendor),
                                  ("deal_type", "deal_types", query.deal_type)):
        if value is not None:
            where.append(f"({d}.{single} = ? OR {dialect.json_has(f'{d}.{plural}')})")
            params += [value, value]
    if query.search is not None and query.search.strip():
        # As the queue searches: the articles through their FTS index, the evidence (and the
        # reviewers' counterpart and notes) by LIKE, which finds part of a word too.
        in_sources, source_params = search_condition(query.search, "s.article_id",
                                                     ["s.sentence"], dialect)
        in_deal, deal_params = search_condition(query.search, None,
                                                [f"{d}.counterpart", f"{d}.notes"], dialect)
        where.append(f"({d}.id IN (SELECT s.deal_id FROM deal_sources s WHERE {in_sources}) "
                     f"OR {in_deal})")
        params += [*source_params, *deal_params]
    return where, params
