"""A scraped URL that does not parse (an unclosed IPv6 bracket) is shown as text, never a 500."""

from __future__ import annotations

from models.registry import DealSource
from pipeline.review.registry import independent_sources
from pipeline.review.web.forms import safe_url
from pipeline.urls import host_of

BROKEN = "https://[bad/news/77"


def test_a_broken_url_has_no_host_and_gets_no_link() -> None:
    assert host_of(BROKEN) is None
    assert safe_url(BROKEN) is None
    assert safe_url("https://example.org/a") == "https://example.org/a"


def test_a_source_with_a_broken_url_still_counts_once() -> None:
    sources = [DealSource(deal_id=1, candidate_id=1, url=BROKEN, site="Daily Wire"),
               DealSource(deal_id=1, candidate_id=2, url="https://other.example/b")]
    assert independent_sources(sources) == 2
