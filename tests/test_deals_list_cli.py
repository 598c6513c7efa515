"""`dealwatch deals list`: a table with a header, the web page's filters, search and orders,
"n of N deals", unknown values refused with the valid ones named, and `--json` as before."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from registryfixtures import searchable_registry

from pipeline.review.export import registry_records
from pipeline.storage import Store


@pytest.fixture
def registry(db_path: Path) -> None:
    with Store(db_path) as store:
        searchable_registry(store)


def table(output: str) -> tuple[list[str], list[list[str]], str]:
    """The header's column names, each row's cells (cut where the header's columns start) and
    the last line."""
    lines = output.splitlines()
    header, rows, last = lines[0], lines[1:-1], lines[-1]
    starts = [i for i in range(len(header))
              if header[i] != " " and (i == 0 or header[i - 2:i] == "  ")]
    cut = [*starts, None]
    return ([header[a:b].strip() for a, b in itertools.pairwise(cut)],
            [[row[a:b].strip() for a, b in itertools.pairwise(cut)] for row in rows], last)


def deal_ids(output: str) -> list[str]:
    return [row[0] for row in table(output)[1]]


def test_a_table_with_a_header_and_n_of_n(run_cli, registry) -> None:
    result = run_cli("deals", "list")
    assert result.exit_code == 0, result.output
    header, rows, last = table(result.output)
    assert header == ["deal", "vendors", "country", "counterpart", "types", "stage", "confidence",
                      "sources", "independent", "official", "first reported", "last reported"]
    assert rows[0] == ["dw-000001", "huawei", "KE", "Ministry of ICT", "cloud", "signed", "B",
                       "3", "2", "", "2025-01-10", "2025-06-02"]
    assert rows[3][:3] == ["dw-000004", "hikvision, huawei", "ZA"]
    assert rows[3][4] == "safe_city, smart_city"
    assert last == "4 of 4 deals"


@pytest.mark.parametrize(("options", "expected"), [
    (("--vendor", "Huawei"), ["dw-000001", "dw-000002", "dw-000004"]),  # a name, any case
    (("--country", "ke"), ["dw-000001"]),
    (("--type", "smart_city"), ["dw-000004"]),
    (("--stage", "awarded"), ["dw-000003"]),
    (("--confidence", "c"), ["dw-000002", "dw-000004"]),
    (("--year", "2024"), ["dw-000003"]),
    (("--search", "Kampala"), ["dw-000002"]),
    (("--search", "tender no. 7"), ["dw-000003"]),  # the notes
    (("--vendor", "huawei", "--confidence", "C", "--search", "Durban"), ["dw-000004"]),
])
def test_filters_and_search_narrow_the_table(run_cli, registry, options, expected) -> None:
    result = run_cli("deals", "list", *options)
    assert result.exit_code == 0, result.output
    assert deal_ids(result.output) == expected
    assert table(result.output)[2] == f"{len(expected)} of 4 deals"


def test_sort_by_a_column_either_way(run_cli, registry) -> None:
    assert deal_ids(run_cli("deals", "list", "--sort", "country").output) == [
        "dw-000003", "dw-000001", "dw-000004", "dw-000002"]  # Ethiopia, Kenya, South Africa…
    assert deal_ids(run_cli("deals", "list", "--sort", "last_reported", "--desc").output) == [
        "dw-000004", "dw-000001", "dw-000002", "dw-000003"]
    assert deal_ids(run_cli("deals", "list", "--sort", "independent", "--desc").output) == [
        "dw-000003", "dw-000001", "dw-000002", "dw-000004"]  # ties by id


def test_nothing_found_says_what_was_asked(run_cli, registry) -> None:
    result = run_cli("deals", "list", "--country", "KE", "--stage", "awarded")
    assert result.exit_code == 0
    assert result.output == "no deal matches: country KE; stage awarded\n0 of 4 deals\n"


def test_an_empty_registry_says_how_to_fill_it(run_cli, db_path) -> None:
    Store(db_path).close()
    result = run_cli("deals", "list", "--vendor", "zte")
    assert result.output == "the registry is empty: `dealwatch review confirm ID` files a deal\n"


@pytest.mark.parametrize(("options", "said"), [
    (("--vendor", "acme"), "Invalid value for '--vendor': 'acme' is no watchlist vendor; the "
                           "vendor ids: "),
    (("--country", "kenya"), "'kenya' is no ISO 3166 alpha-2 country code; did you mean KE"),
    (("--type", "railway"), "'railway' is not one of 'cloud', 'data_centre', "),
    (("--stage", "done"), "'done' is not one of 'proposed', 'mou', 'signed', "),
    (("--confidence", "D"), "'D' is not one of 'a', 'b', 'c'"),
    (("--year", "25"), "'25' is no year: four digits, such as 2025"),
    (("--sort", "price"), "'price' is not one of 'deal_id', 'vendor', 'country', 'counterpart', "),
    (("--search", " "), "an empty search"),
])
def test_an_unknown_value_is_an_error_listing_the_valid_ones(run_cli, registry, options,
                                                             said) -> None:
    result = run_cli("deals", "list", *options)
    assert result.exit_code == 2
    assert said in " ".join(result.output.split())


def test_json_is_the_registry_records_as_before_in_the_chosen_order(run_cli, registry,
                                                                     db_path) -> None:
    with Store(db_path) as store:
        records = {r["deal_id"]: r for r in registry_records(store)}
    listed = json.loads(run_cli("deals", "list", "--json").output)
    assert listed == list(records.values())
    narrowed = json.loads(run_cli("deals", "list", "--json", "--vendor", "huawei", "--sort",
                                  "country", "--desc").output)
    assert narrowed == [records[i] for i in ("dw-000002", "dw-000004", "dw-000001")]


def test_review_list_sorts_too(run_cli, registry) -> None:
    def listed(*options: str) -> list[tuple[int, str | None]]:
        result = run_cli("review", "list", "--status", "all", "--limit", "0", "--json", *options)
        assert result.exit_code == 0, result.output
        return [(c["id"], c["published"]) for c in json.loads(result.output)]

    by_date = listed("--sort", "date")
    assert [p for _, p in by_date] == sorted((p for _, p in by_date), reverse=True)  # newest first
    oldest = listed("--sort", "date", "--asc")
    assert [p for _, p in oldest] == sorted(p for _, p in by_date)
    assert sorted(oldest) == sorted(by_date)
    wrong = run_cli("review", "list", "--sort", "price")
    assert wrong.exit_code == 2
    assert "'price' is not one of 'score', 'date', 'vendor', 'country', 'stage'" in wrong.output
