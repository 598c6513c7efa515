"""Known deals from another registry: `dealwatch deals import FILE` (CSV or JSON Lines), idempotent
by external_id, with a report of the rows it cannot read; imported deals stand on their own
source in the registry, and a new candidate of a known deal says so and confirms into it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from registryfixtures import story

from pipeline.review.decisions import decide
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "known_deals.csv"
HEADER = "external_id,vendor,country,counterpart,deal_type,stage,value,currency,year,source_url\n"
KENYA = ("EX-1,Huawei,Kenya,Ministry of ICT,cloud,signed,120000000,USD,2025,"
         "https://registry.example.org/deals/1\n")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _show(run_cli, deal: str) -> dict:
    shown = run_cli("deals", "show", deal, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


def _deal_ids(store_location: str) -> list[str]:
    with Store(store_location) as store:
        return [d.deal_id for d in store.registry.deals()]


def test_the_readme_example_imports_and_a_second_import_changes_nothing(run_cli, store_location):
    done = run_cli("deals", "--reviewer", "ann", "import", str(EXAMPLE))
    assert done.exit_code == 0, done.output
    assert "known_deals.csv: added 3, updated 0, unchanged 0, skipped 0 (bad rows)" in done.stdout
    assert "added dw-000001 (EX-0001)" in done.stdout

    rows = list(csv.DictReader(EXAMPLE.open(encoding="utf-8")))
    for n, row in enumerate(rows, 1):
        deal = _show(run_cli, f"dw-{n:06d}")
        assert deal["external_id"] == row["external_id"]
        assert deal["source_url"] == row["source_url"]
        assert deal["imported_from"] == "known_deals.csv" and deal["imported_at"]
        assert deal["confirmed_by"] == "ann"
    # names as people write them become what the registry stores
    second, third = _show(run_cli, "dw-000002"), _show(run_cli, "dw-000003")
    assert (second["vendor"], second["country"]) == ("huawei", "ZM")  # "Huawei", "Zambia"
    assert (third["vendor"], third["deal_types"], third["stage"]) == (
        "zte", ["telecom_network"], "under_construction")  # "ZTE Corporation", "telecom network"
    first = _show(run_cli, "dw-000001")
    assert first["deal_types"] == ["cloud", "data_centre"] and first["value"] == 120_000_000
    assert [h["stage"] for h in first["stage_history"]] == ["signed"]

    again = run_cli("deals", "--reviewer", "ann", "import", str(EXAMPLE))
    assert again.exit_code == 0, again.output
    assert "added 0, updated 0, unchanged 3, skipped 0 (bad rows)" in again.stdout
    assert _show(run_cli, "dw-000001")["version"] == first["version"]
    assert _deal_ids(store_location) == ["dw-000001", "dw-000002", "dw-000003"]


def test_jsonl_import_updates_what_the_other_registry_changed(run_cli, tmp_path):
    rows = [{"external_id": "R-7", "vendor": ["huawei", "ZTE"], "country": "ke",
             "counterpart": "Ministry of ICT", "deal_type": ["cloud", "e_government"],
             "stage": "mou", "value": 5e7, "currency": "usd", "year": 2024,
             "source_url": "https://registry.example.org/r/7"},
            {"external_id": 8, "vendor": "hikvision", "country": "UG", "stage": "signed"}]
    path = _write(tmp_path, "registry.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    done = run_cli("deals", "import", str(path))
    assert done.exit_code == 0, done.output
    assert "added 2, updated 0, unchanged 0, skipped 0 (bad rows)" in done.stdout
    deal = _show(run_cli, "dw-000001")
    assert (deal["vendors"], deal["vendor"], deal["country"], deal["currency"]) == (
        ["huawei", "zte"], "huawei", "KE", "USD")
    assert deal["deal_types"] == ["cloud", "e_government"] and deal["year"] == 2024
    assert _show(run_cli, "dw-000002")["external_id"] == "8"

    rows[0].update(stage="signed", value=6e7)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dry = run_cli("deals", "import", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would update dw-000001 (R-7): stage: mou → signed; value: 50000000 → 60000000" \
        in dry.stdout
    assert "dry run, nothing written: added 0, updated 1, unchanged 1" in dry.stdout
    assert _show(run_cli, "dw-000001")["version"] == deal["version"]

    done = run_cli("deals", "import", str(path))
    assert done.exit_code == 0, done.output
    assert "added 0, updated 1, unchanged 1, skipped 0 (bad rows)" in done.stdout
    updated = _show(run_cli, "dw-000001")
    assert (updated["stage"], updated["value"]) == ("signed", 60_000_000)
    assert updated["version"] == deal["version"] + 1
    assert [h["stage"] for h in updated["stage_history"]] == ["mou", "signed"]


def test_a_reviewers_correction_stands_until_the_registry_changes_that_field(run_cli, tmp_path):
    path = _write(tmp_path, "known.csv", HEADER + KENYA)
    assert run_cli("deals", "import", str(path)).exit_code == 0
    edited = run_cli("deals", "--reviewer", "ann", "edit", "dw-000001",
                     "--set", "counterpart=Kenya Ministry of ICT and Digital Economy")
    assert edited.exit_code == 0, edited.output

    again = run_cli("deals", "import", str(path))
    assert "unchanged 1" in again.stdout
    assert _show(run_cli, "dw-000001")["counterpart"] == "Kenya Ministry of ICT and Digital Economy"

    path.write_text(HEADER + KENYA.replace(",2025,", ",2026,"), encoding="utf-8")
    changed = run_cli("deals", "import", str(path))
    assert "updated dw-000001 (EX-1): year: 2025 → 2026" in changed.stdout
    deal = _show(run_cli, "dw-000001")
    assert deal["year"] == 2026
    assert deal["counterpart"] == "Kenya Ministry of ICT and Digital Economy"


def test_a_malformed_csv_reports_each_bad_row_and_loads_the_rest(run_cli, tmp_path, store_location):
    text = (HEADER.rstrip("\n") + ",region\n"
            + KENYA.rstrip("\n") + ",East Africa\n"                                    # line 2
            + "EX-2,Acme Telecom,KE,,cloud,,,,,,\n"                                    # line 3
            + "EX-3,huawei,Narnia,,cloud,,,,,,\n"                                      # line 4
            + "EX-4,huawei,UG,,cloud,signed,a lot,USD,2024,,\n"                        # line 5
            + ",huawei,UG,,cloud,signed,,,2024,,\n"                                    # line 6
            + "EX-1,huawei,UG,,cloud,signed,,,2024,,\n"                                # line 7
            + "EX-5,zte,TZ,,fibre_backbone,awarded,1,2,3,4,5,6\n"                      # line 8
            + "EX-6,zte,TZ,Tanzania Telecommunications,fibre backbone,awarded,,,2022,,\n"  # 9
            + "EX-7,zte,TZ,,smart_city,almost,,,,,\n"                                  # line 10
            + ",,,,,,,,,,\n")                                                          # blank
    path = _write(tmp_path, "bad.csv", text)
    done = run_cli("deals", "import", str(path))
    assert done.exit_code == 1
    errors = done.stderr.splitlines()
    assert errors[0] == "bad.csv: ignored (not a column of ours): region"
    assert errors[1].startswith("bad.csv:3: vendor: 'Acme Telecom' is no watchlist vendor")
    assert errors[2].startswith("bad.csv:4: country: 'Narnia' is no ISO 3166 country")
    assert errors[3] == "bad.csv:5: value: a number, not 'a lot'"
    assert errors[4].startswith("bad.csv:6: external_id: missing")
    assert errors[5] == "bad.csv:7: external_id: 'EX-1' again (first on line 2)"
    assert errors[6] == "bad.csv:8: 12 values; the header names 11 columns"
    assert errors[7].startswith("bad.csv:10: stage: one of proposed, mou,")
    assert errors[-1] == ("error: bad.csv: 7 bad row(s) left out (listed above); the other rows "
                          "were loaded")
    assert len(errors) == 9
    assert "bad.csv: added 2, updated 0, unchanged 0, skipped 7 (bad rows)" in done.stdout
    assert _deal_ids(store_location) == ["dw-000001", "dw-000002"]
    assert _show(run_cli, "dw-000002")["deal_types"] == ["fibre_backbone"]


def test_a_broken_json_line_is_reported_and_the_others_load(run_cli, tmp_path, store_location):
    lines = ['{"external_id": "J-1", "vendor": "huawei", "country": "KE", "stage": "mou"}',
             '{"external_id": "J-2", "vendor": "huawei", "country": "KE"',
             '',
             '["J-3", "huawei", "KE"]',
             '{"external_id": "J-4", "vendor": "huawei", "country": "KE", "year": 2019.5}',
             '{"external_id": "J-5", "vendor": "zte", "country": "GH", "currency": "XYZ"}',
             '{"external_id": "J-6", "vendor": "zte", "country": "GH", "year": 2020}']
    path = _write(tmp_path, "feed.ndjson", "\n".join(lines) + "\n")
    done = run_cli("deals", "import", str(path))
    assert done.exit_code == 1
    errors = done.stderr.splitlines()
    assert errors[0].startswith("feed.ndjson:2: not valid JSON:")
    assert errors[1].startswith("feed.ndjson:4: not a JSON object")
    assert errors[2] == "feed.ndjson:5: year: a whole number, not 2019.5"
    assert errors[3].startswith("feed.ndjson:6: currency: 'XYZ' is no ISO 4217 code")
    assert "added 2, updated 0, unchanged 0, skipped 4 (bad rows)" in done.stdout
    assert len(_deal_ids(store_location)) == 2


@pytest.mark.parametrize("text, message", [
    (KENYA, "bad.csv:1: no usable header: it lacks external_id, vendor, country (is the header "
            "line missing?"),
    ("", "bad.csv:1: no usable header: it lacks external_id, vendor, country"),
    ("id,vendor,country\nEX-1,huawei,KE\n", "bad.csv:1: no usable header: it lacks external_id;"),
    ("external_id,Vendor,VENDOR,country\n", "bad.csv:1: the header names vendor twice"),
])
def test_a_csv_without_a_usable_header_loads_nothing(run_cli, tmp_path, store_location, text, message):
    path = _write(tmp_path, "bad.csv", text)
    done = run_cli("deals", "import", str(path))
    assert done.exit_code == 1
    assert done.stderr.startswith(f"error: {message}")
    assert done.stderr.strip().endswith("nothing was imported")
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert _deal_ids(store_location) == []


def test_a_file_that_cannot_be_read_is_one_line_and_loads_nothing(run_cli, tmp_path, store_location):
    missing = run_cli("deals", "import", str(tmp_path / "nowhere.csv"))
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {tmp_path / 'nowhere.csv'}: no such file; nothing was imported\n"

    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "EX-1,huawei,KE,Minist\xe8re,cloud,,,,,\n").encode("latin-1"))
    unreadable = run_cli("deals", "import", str(latin))
    assert unreadable.exit_code == 1
    assert unreadable.stderr.startswith(f"error: {latin}: not UTF-8 text")

    unnamed = _write(tmp_path, "deals.txt", HEADER + KENYA)
    refused = run_cli("deals", "import", str(unnamed))
    assert refused.exit_code == 1
    assert "say --format csv or --format jsonl" in refused.stderr
    assert _deal_ids(store_location) == []
    assert run_cli("deals", "import", str(unnamed), "--format", "csv").exit_code == 0
    assert _deal_ids(store_location) == ["dw-000001"]


# --- imported deals in the registry ---------------------------------------------------------


@pytest.fixture
def known(run_cli, tmp_path) -> Path:
    """dw-000001: EX-1, Huawei's cloud for Kenya's Ministry of ICT, from registry.example.org."""
    path = _write(tmp_path, "known.csv", HEADER + KENYA)
    assert run_cli("deals", "import", str(path)).exit_code == 0
    return path


def _cloud_and_uganda(store_location: str) -> tuple[int, int]:
    """Two pending candidates: Huawei's cloud for Kenya's Ministry of ICT (the known deal's),
    and a Ugandan one (no known deal there)."""
    with Store(store_location) as store:
        return (story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                      "government cloud.", stage="signed"),
                story(store, "Huawei will install CCTV cameras for the Uganda Police Force.",
                      country="UG", counterpart="Uganda Police Force", deal_type="safe_city"))


def test_a_candidate_of_a_known_deal_says_so_and_confirms_into_it(run_cli, store_location, known):
    cloud, uganda = _cloud_and_uganda(store_location)
    listed = run_cli("review", "list")
    assert listed.exit_code == 0, listed.output
    blocks = listed.stdout.split(f"#{uganda}  ")
    assert "matches dw-000001 (known: EX-1): confirming files it there" in blocks[0]
    assert "matches" not in blocks[1]  # another country: no known deal
    as_json = {e["id"]: e["matches"] for e in json.loads(run_cli("review", "list", "--json").stdout)}
    assert as_json == {cloud: "dw-000001", uganda: None}

    confirmed = run_cli("review", "--reviewer", "ann", "confirm", str(cloud))
    assert confirmed.exit_code == 0, confirmed.output
    assert "filed under dw-000001" in confirmed.stdout
    deal = _show(run_cli, "dw-000001")
    assert [s["url"] for s in deal["sources"]] == ["https://nairobi-wire.test/news/1"]
    assert deal["source_count"] == 2 and deal["external_id"] == "EX-1"
    assert "matches" not in run_cli("review", "list", "--status", "all").stdout.split(
        f"#{uganda}  ")[0].split(f"#{cloud}  ")[1]  # filed: it no longer "matches"


def test_a_known_deal_survives_its_articles_leaving(run_cli, store_location, known):
    with Store(store_location) as store:
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                      "government cloud.", stage="signed")
        assert decide(store, cloud, "confirm", "ann").deal_id == 1
        decide(store, cloud, "reject", "ann", reason="not_a_deal")  # its only article leaves
        deal = store.registry.deal(1)
        assert deal is not None and deal.external_id == "EX-1"
        assert store.registry.deal_sources(1) == []
        decide(store, cloud, "confirm", "ann")
    undone = run_cli("review", "--reviewer", "ann", "undo")
    assert undone.exit_code == 0, undone.output
    assert _show(run_cli, "dw-000001")["sources"] == []


def test_a_known_deal_merged_into_a_withdrawn_deal_lives_again(run_cli, store_location, known):
    with Store(store_location) as store:
        other = story(store, "Huawei and Kenya's Ministry of ICT agreed on a data centre.",
                      deal_type="data_centre", counterpart="ICT Authority",
                      counterpart_type="agency")
        assert decide(store, other, "confirm", "ann", deal_id="new").deal_id == 2
    merged = run_cli("deals", "--reviewer", "ann", "merge", "dw-000002", "dw-000001", "--yes")
    assert merged.exit_code == 0, merged.output
    with Store(store_location) as store:
        decide(store, other, "reject", "ann", reason="not_a_deal")
        assert store.registry.deal(2) is None  # its last source gone: withdrawn
        known_deal = store.registry.deal(1)
        assert known_deal is not None and known_deal.merged_into is None


def test_triangulation_counts_the_registry_source_by_its_domain(run_cli, store_location, tmp_path):
    path = _write(tmp_path, "known.csv", HEADER + KENYA.replace(
        "https://registry.example.org/deals/1", "https://www.daily-nation.test/registry/1"))
    assert run_cli("deals", "import", str(path)).exit_code == 0
    alone = _show(run_cli, "dw-000001")
    assert (alone["source_count"], alone["independent_sources"], alone["confidence"]) == (1, 1, "C")
    with Store(store_location) as store:
        same_outlet = story(store, "Huawei signed the Kenyan government cloud contract with the "
                            "Ministry of ICT.", site="daily-nation.test")
        decide(store, same_outlet, "confirm", "ann", deal_id=1)
    deal = _show(run_cli, "dw-000001")
    assert (deal["source_count"], deal["independent_sources"], deal["confidence"]) == (2, 1, "C")
    with Store(store_location) as store:
        other_outlet = story(store, "The Ministry of ICT's cloud with Huawei was signed.",
                             site="nairobi-wire.test")
        decide(store, other_outlet, "confirm", "ann", deal_id=1)
    deal = _show(run_cli, "dw-000001")
    assert (deal["source_count"], deal["independent_sources"], deal["confidence"]) == (3, 2, "B")

    listed = json.loads(run_cli("deals", "list", "--json").stdout)
    assert [(r["deal_id"], r["source_count"], r["confidence"]) for r in listed] == [
        ("dw-000001", 3, "B")]
    exported = run_cli("export", "--format", "csv")
    row = next(csv.DictReader(io.StringIO(exported.stdout)))
    assert list(row)[-6:] == ["external_id", "source_url", "imported_from", "imported_at",
                              "merged_external_ids", "merged_source_urls"]
    assert (row["external_id"], row["source_url"], row["source_count"]) == (
        "EX-1", "https://www.daily-nation.test/registry/1", "3")
    shown = run_cli("deals", "show", "dw-000001").stdout
    assert ("known deal EX-1: imported from known.csv at "
            f"{deal['imported_at']}; its source https://www.daily-nation.test/registry/1") in shown


def test_the_readme_documents_every_column() -> None:
    from pipeline.review.imports import COLUMNS, REQUIRED

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Importing a registry", 1)[1].split("\n### ", 1)[0]
    table = [line.split("|")[1:3] for line in section.splitlines()
             if line.startswith("| `")]
    documented = {name.strip().strip("`"): required.strip() for name, required in table}
    assert list(documented) == list(COLUMNS)
    assert [name for name, required in documented.items() if required == "yes"] == list(REQUIRED)
    assert "docs/examples/known_deals.csv" in section and EXAMPLE.is_file()


# --- a known deal merged into another, a confirmation taken back, the queue, undo, dry runs ---


def _same_but_newer(before: dict, after: dict) -> None:
    """A deal as `deals show --json` gave it before, with only a newer version: every change,
    even one undone, is a new version (what `export --since` and pushes go by)."""
    assert after["version"] > before["version"]
    assert {k: v for k, v in after.items() if k != "version"} == {
        k: v for k, v in before.items() if k != "version"}


def test_a_known_deal_merged_into_another_keeps_attesting_it(run_cli, store_location, tmp_path):
    with Store(store_location) as store:
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                      "government cloud.", stage="signed")
        assert decide(store, cloud, "confirm", "ann", deal_id="new").deal_id == 1
    path = _write(tmp_path, "known.csv", HEADER + KENYA)
    assert run_cli("deals", "import", str(path)).exit_code == 0  # dw-000002: EX-1
    kept, known = _show(run_cli, "dw-000001"), _show(run_cli, "dw-000002")
    assert (kept["source_count"], kept["confidence"]) == (1, "C")
    assert (known["source_count"], known["independent_sources"]) == (1, 1)

    merged = run_cli("deals", "--reviewer", "ann", "merge", "dw-000001", "dw-000002", "--yes")
    assert merged.exit_code == 0, merged.output
    deal = _show(run_cli, "dw-000001")
    # its article (nairobi-wire.test) and the other registry's source: two outlets
    assert (deal["source_count"], deal["independent_sources"], deal["confidence"]) == (2, 2, "B")
    assert (deal["external_id"], deal["source_url"]) == (None, None)  # its own: not imported
    assert deal["merged_external_ids"] == ["EX-1"]
    assert deal["merged_source_urls"] == ["https://registry.example.org/deals/1"]
    listed = json.loads(run_cli("deals", "list", "--json").stdout)
    assert [(r["deal_id"], r["source_count"], r["confidence"], r["merged_external_ids"])
            for r in listed] == [("dw-000001", 2, "B", ["EX-1"])]
    row = next(csv.DictReader(io.StringIO(run_cli("export", "--format", "csv").stdout)))
    assert (row["source_count"], row["merged_external_ids"], row["merged_source_urls"]) == (
        "2", "EX-1", "https://registry.example.org/deals/1")
    assert ("known deal EX-1 merged into it: its source https://registry.example.org/deals/1"
            in run_cli("deals", "show", "dw-000001").stdout)

    undone = run_cli("deals", "--reviewer", "ann", "undo")
    assert undone.exit_code == 0, undone.output
    _same_but_newer(kept, _show(run_cli, "dw-000001"))
    _same_but_newer(known, _show(run_cli, "dw-000002"))


def test_splitting_a_known_deal_back_out_takes_its_registry_along(run_cli, store_location, known):
    with Store(store_location) as store:
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed the contract for the "
                      "government cloud.", site="daily-nation.test")
        assert decide(store, cloud, "confirm", "ann").deal_id == 1  # into the known deal
        centre = story(store, "Huawei and Kenya's ICT Authority agreed on a data centre.",
                       deal_type="data_centre", counterpart="ICT Authority",
                       counterpart_type="agency")
        assert decide(store, centre, "confirm", "ann", deal_id="new").deal_id == 2
    assert run_cli("deals", "--reviewer", "ann", "merge", "dw-000002", "dw-000001",
                   "--yes").exit_code == 0
    assert _show(run_cli, "dw-000002")["source_count"] == 3  # two articles, EX-1's source
    split = run_cli("deals", "--reviewer", "ann", "split", "dw-000002", "--source", str(cloud))
    assert split.exit_code == 0, split.output
    kept, back = _show(run_cli, "dw-000002"), _show(run_cli, "dw-000001")
    assert (kept["source_count"], kept["merged_external_ids"]) == (1, [])
    assert (back["source_count"], back["external_id"], back["merged_external_ids"]) == (
        2, "EX-1", [])


def test_undoing_a_confirmation_into_a_known_deal_empties_what_it_filled(run_cli, store_location,
                                                                        tmp_path):
    # the other registry knows little of this deal: no counterpart type, stage, value or year
    sparse = _write(tmp_path, "sparse.csv", HEADER + "EX-1,Huawei,Kenya,Ministry of ICT,cloud,"
                                                     ",,,,https://registry.example.org/deals/1\n")
    assert run_cli("deals", "import", str(sparse)).exit_code == 0
    before = _show(run_cli, "dw-000001")
    with Store(store_location) as store:
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed a $120 million contract "
                      "for the government cloud and a data centre.", stage="signed",
                      deal_types=["cloud", "data_centre"], value=120_000_000.0,
                      currency="USD", year=2025)
    confirmed = run_cli("review", "--reviewer", "ann", "confirm", str(cloud))
    assert "filed under dw-000001" in confirmed.stdout, confirmed.output
    filled = _show(run_cli, "dw-000001")
    assert (filled["counterpart_type"], filled["stage"], filled["value"], filled["currency"],
            filled["year"], filled["deal_types"]) == (
        "ministry", "signed", 120_000_000, "USD", 2025, ["cloud", "data_centre"])

    undone = run_cli("review", "--reviewer", "ann", "undo")
    assert undone.exit_code == 0, undone.output
    _same_but_newer(before, _show(run_cli, "dw-000001"))


def test_rejecting_a_source_empties_what_it_filled_but_not_a_reviewers_edit(run_cli, store_location,
                                                                           tmp_path):
    sparse = _write(tmp_path, "sparse.csv", HEADER + "EX-1,Huawei,Kenya,Ministry of ICT,cloud,"
                                                     ",,,,\n")
    assert run_cli("deals", "import", str(sparse)).exit_code == 0
    with Store(store_location) as store:
        cloud = story(store, "Kenya's Ministry of ICT and Huawei signed a $120 million contract "
                      "for the government cloud.", value=120_000_000.0, currency="USD")
        assert decide(store, cloud, "confirm", "ann").deal_id == 1
    assert run_cli("deals", "--reviewer", "ann", "edit", "dw-000001",
                   "--set", "value=150000000").exit_code == 0
    rejected = run_cli("review", "--reviewer", "ann", "reject", str(cloud),
                       "--reason", "not_a_deal")
    assert rejected.exit_code == 0, rejected.output
    deal = _show(run_cli, "dw-000001")
    assert (deal["value"], deal["currency"], deal["counterpart_type"], deal["stage"]) == (
        150_000_000, None, None, None)  # the reviewer's value stands; the rest is empty again


def test_the_queue_says_which_deal_a_candidate_would_be_filed_under(run_cli, store_location, known):
    from pipeline.review.views import QUEUE_JSON_FIELDS

    cloud, uganda = _cloud_and_uganda(store_location)
    shown = run_cli("queue")
    assert shown.exit_code == 0, shown.output
    blocks = shown.stdout.split(f"#{uganda}  ")
    assert "matches dw-000001 (known: EX-1): confirming files it there" in blocks[0]
    assert "matches" not in blocks[1]
    listed = json.loads(run_cli("queue", "--json").stdout)
    assert {e["id"]: e["matches"] for e in listed} == {cloud: "dw-000001", uganda: None}
    assert list(listed[0]) == [*QUEUE_JSON_FIELDS, "matches"]  # appended, as in review list


def test_an_undo_refused_after_an_import_names_the_import(run_cli, known):
    assert run_cli("deals", "--reviewer", "ann", "edit", "dw-000001",
                   "--set", "counterpart=Kenya Ministry of ICT").exit_code == 0
    known.write_text(HEADER + KENYA.replace(",2025,", ",2026,"), encoding="utf-8")
    assert "updated dw-000001" in run_cli("deals", "import", str(known)).stdout
    imported_at = _show(run_cli, "dw-000001")["imported_at"]
    refused = run_cli("deals", "--reviewer", "ann", "undo")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: dw-000001 has changed since the edit of dw-000001 (counterpart) (the import of "
        f"known.csv at {imported_at}); it cannot be undone")
    assert "review decision" not in refused.stderr


@pytest.mark.backends("sqlite")  # a database file that must not be made
def test_a_dry_run_or_a_file_it_cannot_read_makes_no_database(run_cli, store_location, tmp_path):
    path = _write(tmp_path, "known.csv", HEADER + KENYA)
    dry = run_cli("deals", "import", str(path), "--dry-run")
    assert dry.exit_code == 1 and dry.stdout == ""
    assert dry.stderr.startswith(f"error: {store_location}: no such database;")
    assert len(dry.stderr.splitlines()) == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "EX-1,huawei,KE,Minist\xe8re,cloud,,,,,\n").encode("latin-1"))
    for unreadable in (tmp_path / "nowhere.csv", latin):
        refused = run_cli("deals", "import", str(unreadable))
        assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1
        assert refused.stderr.startswith(f"error: {unreadable}: ")
    assert not Path(store_location).parent.exists()  # no database, no folder for it, no accounts file

    assert run_cli("deals", "import", str(path)).exit_code == 0
    assert "dry run, nothing written: added 0, updated 0, unchanged 1" in run_cli(
        "deals", "import", str(path), "--dry-run").stdout
