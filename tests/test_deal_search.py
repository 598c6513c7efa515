"""Finding deals: the deals list's filters, its search over the sources' articles and evidence
(and the deal's counterpart and notes), its orders, and the query-string form the web UI reads
(unknown values refused with the valid ones named)."""


from __future__ import annotations

from collections.abc import Iterator

import pytest
from registryfixtures import searchable_registry

from pipeline.config import load_config
from pipeline.review.export import registry_records
from pipeline.review.filters import FilterError
from pipeline.review.registry import merge_deals
from pipeline.review.views import DEAL_SORTS, deal_listing
from pipeline.review.web.forms import deal_params, parse_deal_query
from pipeline.storage import Store
from pipeline.storage.deal_query import DealQuery

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    with Store(store_location) as opened:
        searchable_registry(opened)
        yield opened


def found(store: Store, **query: object) -> list[str]:
    return [w.deal.deal_id for w in deal_listing(store, DealQuery(**query)).deals]  # type: ignore[arg-type]


def numbers(*ids: int) -> list[str]:
    return [f"dw-{n:06d}" for n in ids]


@pytest.mark.parametrize(("query", "expected"), [
    ({}, (1, 2, 3, 4)),
    ({"vendor": "huawei"}, (1, 2, 4)),  # dw-000004 has Huawei second among its vendors
    ({"vendor": "hikvision"}, (4,)),
    ({"vendor": "zte"}, (3,)),
    ({"country": "KE"}, (1,)),
    ({"deal_type": "safe_city"}, (2, 4)),
    ({"deal_type": "smart_city"}, (4,)),  # its second type
    ({"stage": "awarded"}, (3,)),
    ({"year": 2024}, (3,)),
    ({"confidence": ("A",)}, (3,)),
    ({"confidence": ("C",)}, (2, 4)),
    ({"confidence": ("A", "B")}, (1, 3)),
    ({"vendor": "huawei", "confidence": ("C",)}, (2, 4)),
    ({"vendor": "huawei", "country": "ZA", "stage": "proposed", "year": 2026}, (4,)),
    ({"vendor": "dahua"}, ()),
    ({"country": "KE", "stage": "awarded"}, ()),
])
def test_each_filter_narrows_the_list(store, query, expected) -> None:
    assert found(store, **query) == numbers(*expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("Kampala", (2,)),  # a word of the evidence
    ("officials spoke", (1, 2, 3, 4)),  # words of every article, past the evidence
    ("syndicated", (1,)),  # a word only the syndicated copy's article has
    ("Ethio Tele", (3,)),  # part of a word: the evidence as typed
    ("7/2024", (3,)),  # the notes
    ("ethekwini", (4,)),  # the counterpart, in another case; no source names it
    ("cameras", (2,)),  # the article's words by their stem: "CCTV cameras"
    ("Kampala Durban", ()),  # all words must match
])
def test_search_reads_articles_evidence_counterpart_and_notes(store, text, expected) -> None:
    assert found(store, search=text) == numbers(*expected)


@pytest.mark.parametrize("text", ['"', "*", "NEAR(a b)", "%", "_", "\\", "'; DROP TABLE deals; --",
                                  "Србија 😀"])
def test_no_search_text_breaks_the_query(store, text) -> None:
    assert found(store, search=text) == []


def test_search_and_filters_together(store) -> None:
    assert found(store, search="Huawei") == numbers(1, 2, 4)
    assert found(store, search="Huawei", confidence=("C",)) == numbers(2, 4)
    assert found(store, search="Huawei", confidence=("C",), country="ZA") == numbers(4)


@pytest.mark.parametrize(("sort", "ascending", "descending"), [
    ("deal_id", (1, 2, 3, 4), (4, 3, 2, 1)),
    ("country", (3, 1, 4, 2), (2, 4, 1, 3)),  # by name: Ethiopia, Kenya, South Africa, Uganda
    ("vendor", (4, 1, 2, 3), (3, 1, 2, 4)),  # the lead vendor: hikvision, huawei (1, 2), zte
    ("type", (1, 2, 4, 3), (3, 2, 4, 1)),  # cloud, safe_city (2, 4), telecom_network
    ("stage", (4, 1, 2, 3), (3, 1, 2, 4)),  # a deal's life: proposed, signed (1, 2), awarded
    ("confidence", (3, 1, 2, 4), (2, 4, 1, 3)),
    ("sources", (2, 4, 1, 3), (1, 3, 2, 4)),  # 3, 1, 3, 1 sources
    ("independent", (2, 4, 1, 3), (3, 1, 2, 4)),  # 2, 1, 3, 1 outlets
    ("first_reported", (3, 1, 2, 4), (4, 2, 1, 3)),
    ("last_reported", (3, 2, 1, 4), (4, 1, 2, 3)),
])
def test_every_column_sorts_both_ways_with_ties_by_id(store, sort, ascending, descending
                                                      ) -> None:
    assert found(store, sort=sort) == numbers(*ascending)
    assert found(store, sort=sort, descending=True) == numbers(*descending)
    assert set(DEAL_SORTS) == {"deal_id", "country", "vendor", "type", "stage", "confidence",
                               "sources", "independent", "first_reported", "last_reported",
                               "counterpart"}


def test_deals_without_a_value_come_last_either_way(store) -> None:
    # dw-000002 has no counterpart; "eThekwini" sorts before "Ethio" without regard to case
    assert found(store, sort="counterpart") == numbers(4, 3, 1, 2)
    assert found(store, sort="counterpart", descending=True) == numbers(1, 3, 4, 2)


def test_a_listing_counts_the_registry_and_leaves_merged_deals_out(store) -> None:
    listing = deal_listing(store, DealQuery(vendor="huawei"))
    assert (len(listing), listing.total) == (3, 4)
    merge_deals(store, 1, 2, "ann")
    assert found(store) == numbers(1, 3, 4)
    assert found(store, search="Kampala") == numbers(1)  # its sources moved to dw-000001
    assert deal_listing(store).total == 3


def test_records_are_the_exports_for_the_listed_deals_in_the_listed_order(store) -> None:
    official = {"monitor.test"}
    listing = deal_listing(store, DealQuery(vendor="huawei", sort="country", descending=True),
                           official, records=True)
    exported = {r["deal_id"]: r for r in registry_records(store, official=official)}
    assert [r["deal_id"] for r in listing.records] == numbers(2, 4, 1)
    assert listing.records == [exported[r["deal_id"]] for r in listing.records]
    assert deal_listing(store).records == []  # not asked for


# --- the query string -----------------------------------------------------------------------


WATCHLIST = load_config().watchlist


def parsed(**params: str) -> DealQuery:
    grades = params.pop("confidence", "")
    return parse_deal_query(params, [g for g in grades.split(",") if g], WATCHLIST)


def test_the_query_string_reads_names_cases_and_empty_values() -> None:
    query = parsed(vendor="Huawei", country="ke", deal_type="cloud", stage="", year="2025",
                   q="  data centre ", confidence="b,a,b", sort="last_reported", order="desc")
    assert query == DealQuery(vendor="huawei", country="KE", deal_type="cloud", year=2025,
                              search="data centre", confidence=("B", "A"),
                              sort="last_reported", descending=True)
    assert parse_deal_query(dict(deal_params(query)), query.confidence, WATCHLIST) == query
    assert parsed() == DealQuery() and deal_params(DealQuery()) == []


@pytest.mark.parametrize(("params", "said"), [
    ({"vendor": "acme"}, "vendor: 'acme' is no watchlist vendor; the vendor ids: "),
    ({"country": "kenya"}, "country: 'kenya' is no ISO 3166 alpha-2 country code; did you mean "
                           "KE (Kenya)?"),
    ({"deal_type": "railway"}, "deal_type: 'railway' is no deal type: use one of cloud, "),
    ({"stage": "done"}, "stage: 'done' is no stage: use one of proposed, mou, signed, "),
    ({"year": "25"}, "year: '25' is no year: four digits, such as 2025"),
    ({"confidence": "D"}, "confidence: 'D' is no confidence grade: use one of A, B, C"),
    ({"sort": "price"}, "sort: 'price' is no sort key: use one of deal_id, vendor, country, "),
    ({"order": "up"}, "order: 'up' is no order: use one of asc, desc"),
    ({"q": "x" * 201}, "q: a search of 200 characters at most"),
])
def test_an_unknown_value_is_refused_with_the_valid_ones(params, said) -> None:
    with pytest.raises(FilterError) as refused:
        parsed(**params)
    assert str(refused.value).startswith(said)
    if "vendor" in params:
        assert "huawei" in str(refused.value) and "zte" in str(refused.value)
