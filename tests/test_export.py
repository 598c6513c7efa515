"""Registry export: DESIGN.md's record, one CSV row per deal that a spreadsheet and Datasette read
as is, JSON and JSON Lines, the same bytes for the same registry, every export logged."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from registryfixtures import kenya_cloud, story

from pipeline.cli import main
from pipeline.review.decisions import decide
from pipeline.review.export import (
    CSV_COLUMNS,
    RECORD_FIELDS,
    build_export,
    registry_records,
    to_csv,
)
from pipeline.review.registry import merge_deals
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

DESIGN_FIELDS = [
    "deal_id", "vendor", "vendors", "country", "country_name", "counterpart", "counterpart_type",
    "deal_type", "deal_types", "stage", "value", "currency", "year", "first_reported",
    "last_reported", "sources", "confirmed_by", "confirmed_at", "notes"]


@pytest.fixture
def registry(store_location) -> dict[str, int]:
    """Two deals: the Kenyan cloud (MoU, its copy, signed, completed) and the Ugandan cameras."""
    with Store(store_location) as store:
        ids = kenya_cloud(store)
        kenya = decide(store, ids["mou"], "confirm", "ann", note="=cmd|' /C calc'!A0").deal_id
        decide(store, ids["completed"], "confirm", "ann", deal_id=kenya)
        decide(store, ids["signed"], "confirm", "bob", deal_id=kenya)
        decide(store, ids["uganda"], "confirm", "bob")
        decide(store, ids["noise"], "reject", "bob", reason="not_a_deal")
    return ids


@pytest.fixture
def run_cli(store_location, monkeypatch):
    for name in ("DEALWATCH_DB", "DEALWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str):
        result = CliRunner().invoke(main, ["--db", str(store_location), *args])
        assert "Traceback" not in result.output
        return result

    return invoke


def test_records_follow_the_design_field_order(registry, store_location) -> None:
    with Store(store_location) as store:
        records = registry_records(store)
    assert list(RECORD_FIELDS[:len(DESIGN_FIELDS)]) == DESIGN_FIELDS  # extended, never reordered
    kenya, uganda = records
    assert list(kenya) == list(RECORD_FIELDS)
    assert (kenya["deal_id"], kenya["vendor"], kenya["vendors"], kenya["country"],
            kenya["country_name"]) == ("dw-000001", "huawei", ["huawei"], "KE", "Kenya")
    assert (kenya["stage"], kenya["value"], kenya["currency"], kenya["year"]) == (
        "completed", 120_000_000.0, "USD", 2025)
    assert (kenya["first_reported"], kenya["last_reported"]) == ("2025-01-10", "2026-03-15")
    assert kenya["confirmed_by"] == "ann" and kenya["confirmed_at"].endswith("Z")
    # sources: oldest first, each with what DESIGN.md asks for
    assert [s["published"] for s in kenya["sources"]] == [
        "2025-01-10", "2025-01-11", "2025-06-02", "2026-03-15"]
    assert set(kenya["sources"][0]) == {"url", "title", "published", "sentence", "site",
                                        "official"}  # official: added by triangulation
    # triangulation, at the end: the MoU, its syndicated copy and the completion share one
    # outlet or story; the signing is a second outlet
    assert (kenya["source_count"], kenya["independent_sources"], kenya["official_source"],
            kenya["confidence"]) == (4, 2, False, "B")
    assert (uganda["source_count"], uganda["confidence"]) == (1, "C")
    assert kenya["sources"][1]["site"] == "syndicated.test"
    assert [h["stage"] for h in kenya["stage_history"]] == ["mou", "signed", "completed"]
    assert uganda["country_name"] == "Uganda" and len(uganda["sources"]) == 1


def test_merged_deals_are_left_out(registry, store_location) -> None:
    with Store(store_location) as store:
        merge_deals(store, 1, 2)
        assert [r["deal_id"] for r in registry_records(store)] == ["dw-000001"]


def test_csv_is_one_row_per_deal_with_flat_cells(registry, store_location) -> None:
    with Store(store_location) as store:
        data = build_export(store, "csv").data
    text = data.decode("utf-8")
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert CSV_COLUMNS[:len(DESIGN_FIELDS)] == tuple(DESIGN_FIELDS)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["deal_id"] for r in rows] == ["dw-000001", "dw-000002"]
    kenya = rows[0]
    assert kenya["vendors"] == "huawei" and kenya["deal_types"] == "cloud"
    assert kenya["value"] == "120000000" and kenya["year"] == "2025"
    assert kenya["sources"].split("; ") == [
        "https://nairobi-wire.test/news/1", "https://syndicated.test/news/6",
        "https://daily-nation.test/news/2", "https://nairobi-wire.test/news/3"]
    assert kenya["source_count"] == "4"
    assert kenya["source_dates"] == "2025-01-10; 2025-01-11; 2025-06-02; 2026-03-15"
    assert kenya["evidence"].split("\n")[2].startswith("Kenya's Ministry of ICT and Huawei signed")
    assert len(kenya["source_titles"].split("\n")) == 4
    assert kenya["stage_history"] == "2025-01-10 mou; 2025-06-02 signed; 2026-03-15 completed"
    # a spreadsheet would run a cell starting with "=" as a formula
    assert kenya["notes"] == "'=cmd|' /C calc'!A0"
    assert rows[1]["value"] == "" and rows[1]["currency"] == ""


def test_json_and_jsonl_hold_the_same_records(registry, store_location) -> None:
    with Store(store_location) as store:
        as_json = json.loads(build_export(store, "json").data)
        lines = build_export(store, "jsonl").data.decode().splitlines()
        records = registry_records(store)
    assert as_json == records == [json.loads(line) for line in lines]
    assert list(as_json[0]) == list(RECORD_FIELDS)  # field order kept, not sorted


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_same_registry_same_bytes(registry, store_location, fmt) -> None:
    with Store(store_location) as store:
        first = build_export(store, fmt)
        again = build_export(store, fmt)
    assert first.data == again.data and first.sha256 == again.sha256
    assert first.deals == 2


def test_source_order_does_not_depend_on_the_order_of_confirmation(store_location, tmp_path) -> None:
    exports = []
    for name, order in (("a", ["mou", "signed", "completed"]), ("b", ["completed", "mou", "signed"])):
        with Store(tmp_path / f"{name}.db") as store:
            ids = kenya_cloud(store)
            deal = None
            for key in order:
                deal = decide(store, ids[key], "confirm", "ann", deal_id=deal).deal_id
            exports.append(registry_records(store)[0])
    assert exports[0]["sources"] == exports[1]["sources"]
    assert exports[0]["stage_history"] == exports[1]["stage_history"]


def test_empty_registry(store_location) -> None:
    with Store(store_location) as store:
        assert build_export(store, "csv").data.decode() == ",".join(CSV_COLUMNS) + "\r\n"
        assert build_export(store, "json").data == b"[]\n"
        assert build_export(store, "jsonl").data == b""


def test_csv_loads_into_sqlite_with_sqlite_utils(registry, store_location, tmp_path) -> None:
    """What Datasette would serve: `sqlite-utils insert … --csv` makes a table, one row per deal."""
    tool = Path(sys.executable).parent / "sqlite-utils"
    if not tool.exists():
        tool = Path(shutil.which("sqlite-utils") or "")
    if not tool.is_file():
        pytest.skip("the sqlite-utils command is not installed")
    out = tmp_path / "registry.csv"
    with Store(store_location) as store:
        out.write_bytes(build_export(store, "csv").data)
    target = tmp_path / "registry.db"
    subprocess.run([str(tool), "insert", str(target), "deals", str(out), "--csv", "--pk", "deal_id"],
                   check=True, capture_output=True, timeout=60)
    conn = sqlite3.connect(target)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(deals)")]
    assert columns == list(CSV_COLUMNS)
    rows = conn.execute("SELECT deal_id, country_name, value, year, source_count, evidence "
                        "FROM deals ORDER BY deal_id").fetchall()
    conn.close()
    assert [r[0] for r in rows] == ["dw-000001", "dw-000002"]
    assert rows[0][1:5] == ("Kenya", 120000000, 2025, 4)  # numbers come out as numbers
    assert rows[0][5].count("\n") == 3


def test_since_filters_on_the_last_change(registry, store_location, run_cli) -> None:
    with Store(store_location) as store:
        store.db.execute("UPDATE deals SET updated_at = '2025-12-31T23:00:00Z' WHERE id = 2")
        assert [r["deal_id"] for r in registry_records(store, since="2026-01-01")] == ["dw-000001"]
        assert len(registry_records(store, since="2025-12-31T23:00:00Z")) == 2
        assert len(registry_records(store, since="2025-12-31T22:00:00-02:00")) == 1
    result = run_cli("export", "--format", "jsonl", "--since", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["deal_id"] for line in result.stdout.splitlines()] == ["dw-000001"]
    bad = run_cli("export", "--since", "last week")
    assert bad.exit_code == 2 and "a date such as" in bad.output


def test_cli_writes_files_and_stdout_and_logs_every_export(registry, store_location, run_cli,
                                                          tmp_path) -> None:
    out = tmp_path / "out" / "registry.csv"
    result = run_cli("export", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "exported 2 deal(s) as csv" in result.stderr
    to_stdout = run_cli("export", "--format", "json")
    assert json.loads(to_stdout.stdout)[0]["deal_id"] == "dw-000001"
    default = run_cli("export", "--out", "-")
    assert default.stdout_bytes == out.read_bytes()  # csv is the default; same bytes everywhere
    with Store(store_location) as store:
        logged = list(store.db.query("SELECT * FROM exports ORDER BY id"))
        assert to_csv(registry_records(store)) == out.read_bytes()
    assert [(r["format"], r["deals"]) for r in logged] == [("csv", 2), ("json", 2), ("csv", 2)]
    assert logged[0]["destination"] == str(out.resolve())
    assert logged[1]["destination"] == "stdout"
    assert logged[0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == logged[2]["sha256"]
    assert logged[1]["sha256"] == hashlib.sha256(to_stdout.stdout_bytes).hexdigest()
    assert all(r["exported_at"] for r in logged)
    assert run_cli("export", "--format", "xml").exit_code == 2
    blocked = tmp_path / "file"
    blocked.write_text("x")
    unwritable = run_cli("export", "--out", str(blocked / "sub" / "x.csv"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.output
    with Store(store_location) as store:
        assert store.counts()["exports"] == 3  # a failed write is not logged


def test_a_rejected_source_is_no_evidence(registry, store_location) -> None:
    with Store(store_location) as store:
        extra = story(store, "Huawei and Kenya's Ministry of ICT opened the cloud's second site.",
                      published="2026-01-20", stage="completed")
        decide(store, extra, "confirm", "ann", deal_id=1)
        assert len(registry_records(store)[0]["sources"]) == 5
        decide(store, extra, "reject", "bob", reason="duplicate")
        assert len(registry_records(store)[0]["sources"]) == 4


def test_csv_defuses_every_cell_that_came_from_a_page(store_location) -> None:
    from registryfixtures import story

    from pipeline.review.decisions import decide

    with Store(store_location) as store:
        cid = story(store, "Kenya's Ministry of ICT signed a cloud contract with Huawei.",
                    site='=HYPERLINK("http://x.test","y")')
        decide(store, cid, "confirm", "@ana")
        rows = list(csv.DictReader(io.StringIO(build_export(store, "csv").data.decode(), newline="")))
    assert rows[0]["source_sites"].startswith("'=HYPERLINK")
    assert rows[0]["confirmed_by"] == "'@ana"
