"""Searching the review queue: the FTS query a user cannot break, the evidence by LIKE, the
"n of N" count, and `dealwatch review list --search` / `dealwatch queue --search`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from webfixtures import seed_review_queue, story

from pipeline.storage import QueueQuery, Store
from pipeline.storage.dialect import SQLITE
from pipeline.storage.queue import fts_terms

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


@pytest.fixture
def ids(store_location: str) -> dict[str, int]:
    with Store(store_location) as store:
        found = seed_review_queue(store)
        text = ("SÃO PAULO - Huawei signed a deal with the city of São Paulo for 5G-ready "
                "street cabinets.\n\nThe headline names the mayor.")
        found["sao"] = story(store, 20, text, text.split("\n")[0][12:],
                             title="Prefeitura escolhe fornecedor", vendor="huawei",
                             country="BR", score=0.5)
        return found


def search(store_location: str, text: str, **filters: object) -> list[int]:
    with Store(store_location) as store:
        return [e.id for e in store.candidates.queue(QueueQuery(search=text, **filters))]


def test_words_match_the_article_by_stem_and_all_must_match(store_location, ids) -> None:
    assert search(store_location, "Ethio Telecom") == [ids["zte-ET"]]
    assert search(store_location, "camera") == [ids["hikvision-ZA"]]  # "cameras": porter's stem
    assert search(store_location, "disclosed") == [ids[k] for k in (
        "zte-ET", "hikvision-ZA", "huawei-RS", "dahua-PH", "zte-BO")]  # text past the evidence
    assert search(store_location, "Prefeitura") == [ids["sao"]]  # the title
    assert search(store_location, "Entel Kragujevac") == []


def test_the_evidence_matches_part_of_a_word(store_location, ids) -> None:
    assert search(store_location, "Kragujev") == [ids["huawei-RS"]]
    assert search(store_location, "5G-ready") == [ids["sao"]]


def test_unicode_and_accents(store_location, ids) -> None:
    assert search(store_location, "São Paulo") == [ids["sao"]]
    assert search(store_location, "sao paulo") == [ids["sao"]]  # unicode61 folds the accent
    assert search(store_location, "Србија 😀") == []


@pytest.mark.parametrize("text", [
    '"', '""', "*", "^", "NEAR", "NEAR(Ethio Telecom, 2)", "OR Ethio", "title:Ethio", "{title}:Ethio", "'; DROP TABLE x; --", "%", "_", "\\",
])
def test_no_input_breaks_the_query(store_location, ids, text) -> None:
    # Operators are plain words, which no article here has; LIKE's wildcards are literal.
    assert search(store_location, text) == []  # and never an sqlite3.OperationalError


@pytest.mark.parametrize("text", [
    '"Ethio', 'Ethio"', "Ethio*", "-Ethio", "Ethio -Telecom", "^Ethio", "Ethio + Telecom",
    "(Ethio)", "Ethio: Telecom", "NOT Ethio",  # "not" is a word of its text
])
def test_punctuation_is_no_operator(store_location, ids, text) -> None:
    assert search(store_location, text) == [ids["zte-ET"]]  # nothing negated, nothing prefixed


@pytest.mark.parametrize("text", ["-", "(", ")", ":", "'", "$"])
def test_bare_symbols_search_the_evidence(store_location, ids, text) -> None:
    with Store(store_location) as store:
        expected = [e.id for e in store.candidates.queue(QueueQuery()) if text in e.sentence]
    assert search(store_location, text) == expected


def test_fts_terms_quotes_every_word() -> None:
    assert SQLITE.fts_param(fts_terms('Ethio "NEAR" -Telecom*')) == '"Ethio" "NEAR" "Telecom"'
    assert fts_terms("São_Paulo") == ["São", "Paulo"]
    assert fts_terms('" * - ^') == []


def test_search_keeps_the_other_filters_and_the_copies(store_location, ids) -> None:
    assert search(store_location, "Huawei", country="RS") == [ids["huawei-RS"]]
    # The syndicated story shows once, as its best copy; a word only in the copy finds the copy.
    assert search(store_location, "Huawei", country="KE") == [ids["syndicated"]]
    assert search(store_location, "Coastline") == [ids["copy"]]


def test_the_count_and_the_position_of_a_page(store_location, ids) -> None:
    with Store(store_location) as store:
        everything = store.candidates.queue(QueueQuery())
        assert store.candidates.queue_count(QueueQuery()) == len(everything) == 8
        third = everything[2]
        assert store.candidates.queue_count(QueueQuery(), before=(third.score, third.id)) == 2
        query = QueueQuery(search="disclosed")
        assert store.candidates.queue_count(query) == 5
        assert store.candidates.queue_count(replace(query, status=None)) == 5


def test_review_list_search(run_cli, ids) -> None:
    result = run_cli("review", "list", "--search", "Ethio Telecom")
    assert result.exit_code == 0, result.output
    assert f"#{ids['zte-ET']} " in result.output and f"#{ids['zte-BO']} " not in result.output
    assert result.output.rstrip().endswith("1 of 1 shown")
    rows = json.loads(run_cli("review", "list", "--search", 'Kragujev', "--json").output)
    assert [r["id"] for r in rows] == [ids["huawei-RS"]]


def test_queue_search_and_its_footer(run_cli, ids) -> None:
    result = run_cli("queue", "--search", "disclosed", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "2 of 5 shown (--limit 0 shows all)" in result.output
    rows = json.loads(run_cli("queue", "--search", "camera", "--json").output)
    assert [r["id"] for r in rows] == [ids["hikvision-ZA"]]
    assert run_cli("queue", "--search", "nothing-like-this").output.strip() == "the queue is empty"


def test_an_empty_search_is_a_usage_error(run_cli, ids) -> None:
    result = run_cli("review", "list", "--search", "  ")
    assert result.exit_code == 2 and "an empty search" in result.output
