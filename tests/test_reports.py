"""Reports: an aggregate claim ("70 deals in 41 countries") is read for its counts and scope,
filed as a report apart from deals when confirmed, taken back exactly by undo, withdrawn by a
rejection, and listed, shown and exported from the terminal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from registryfixtures import story

from models.registry import QueueEntry
from pipeline.config import load_config
from pipeline.review import decisions, registry
from pipeline.review.reports import ClaimReader, ClaimWords, read_claim
from pipeline.storage import Store

CONFIG = load_config()
CLAIMS = ClaimReader(CONFIG)
ENGLISH = CLAIMS.words("en")

CLAIM = "A think tank counted 70 surveillance deals in 41 countries worldwide since 2008."
AGGREGATE = dict(kind="aggregate", country=None, counterpart=None, counterpart_type=None,
                 stage="unknown", deal_type="safe_city", score=0.7)


# --- reading a claim --------------------------------------------------------------------------


def counts(sentence: str, words: ClaimWords = ENGLISH) -> list[tuple[int, str]]:
    return [(c.count, c.noun) for c in read_claim(sentence, words).counts]


def test_a_claim_gives_its_counts_the_headline_ones_and_its_scope() -> None:
    claim = read_claim(CLAIM, ENGLISH)
    assert [(c.count, c.noun, c.text) for c in claim.counts] == [
        (70, "deals", "70 surveillance deals"), (41, "countries", "41 countries")]
    assert (claim.deals, claim.countries, claim.scope) == (70, 41, "worldwide")


def test_thousands_separators_and_number_words_are_read() -> None:
    claim = read_claim("The tally found 1,250 installations in thirty-two nations.", ENGLISH)
    assert [(c.count, c.noun) for c in claim.counts] == [(1250, "installations"), (32, "nations")]
    assert (claim.deals, claim.countries, claim.scope) == (1250, 32, None)
    assert counts("Seventy-five contracts were signed over a decade.") == [(75, "contracts")]
    assert counts("Its survey lists two hundred and six cities.") == [(206, "cities")]


def test_digits_of_other_scripts_count_as_written() -> None:
    assert counts("Records show ٧٠ deals in ١٢ countries.") == [(70, "deals"), (12, "countries")]
    assert counts("Records show ७० deals.") == [(70, "deals")]


def test_a_named_region_is_the_scope_and_a_scope_noun_is_no_deal_count() -> None:
    claim = read_claim("ZTE has delivered 45 projects for 19 governments across Latin America.",
                       ENGLISH)
    assert [(c.count, c.noun) for c in claim.counts] == [(45, "projects"), (19, "governments")]
    # governments are where, not deals nor countries
    assert (claim.deals, claim.countries, claim.scope) == (45, None, "Latin America")
    assert read_claim("Its 30 cities have signed.", ENGLISH).deals is None


def test_what_is_not_a_count_is_left_out() -> None:
    # a year, a decimal, "one", a count beyond four words, a comma between number and noun
    assert counts("In 2021 Huawei built networks for 12 municipalities.") == [
        (12, "municipalities")]
    assert counts("Sales rose 2.5 percent as one of the projects stalled.") == []
    assert counts("It holds 70 of the vendor's many small but growing deals.") == []
    assert counts("Of the 70, deals in Asia were the most.") == []
    assert counts("The 5G networks reached 9 cities.") == [(9, "cities")]
    assert read_claim("Huawei signed a deal with Kenya.", ENGLISH).counts == []


def test_the_words_come_from_the_articles_language() -> None:
    claim = CLAIMS.read("Huawei firmó 45 acuerdos con 12 gobiernos en toda América Latina.", "es")
    assert [(c.count, c.noun) for c in claim.counts] == [(45, "acuerdos"), (12, "gobiernos")]
    assert (claim.deals, claim.scope) == (45, "América Latina")
    # no pattern folder for the language: English words
    assert CLAIMS.read(CLAIM, "xx").deals == 70


def test_words_given_by_hand_replace_the_configured_ones() -> None:
    words = ClaimWords(count_nouns=("pactos",), scope_nouns=("reinos",), global_words=("aquí",),
                       national_scopes=frozenset({"reinos"}))
    claim = read_claim("Firmaron 8 pactos en 3 reinos aquí.", words)
    assert (claim.deals, claim.countries, claim.scope) == (8, 3, "worldwide")


# --- filing, undo, rejection ------------------------------------------------------------------


@pytest.fixture
def store(db_path: Path):
    with Store(db_path) as opened:
        yield opened


def aggregate_story(store: Store) -> tuple[int, int]:
    """An aggregate claim and its syndicated copy on another site."""
    lead = story(store, CLAIM, site="tech-ledger.test", title="Surveillance exports mapped",
                 **AGGREGATE)
    copy = story(store, CLAIM, site="copy-desk.test", cluster_of=lead, **AGGREGATE)
    return lead, copy


def candidate(store: Store, candidate_id: int) -> QueueEntry:
    found = store.candidates.candidate(candidate_id)
    assert found is not None
    return found


def test_confirming_an_aggregate_files_a_report_with_its_copies_and_no_deal(store) -> None:
    lead, copy = aggregate_story(store)
    outcome = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS,
                               edits={"vendor": "zte"}, note="seen in print")
    assert outcome.deal_id is None and outcome.candidate_ids == [lead, copy]
    assert store.registry.deals() == []
    [report] = store.reports.reports()
    assert report.id == outcome.report_id
    assert (report.report_id, report.vendor, report.vendors) == ("rp-000001", "zte", ["zte"])
    assert (report.deals, report.countries, report.scope) == (70, 41, "worldwide")
    assert [(c.count, c.noun) for c in report.counts] == [(70, "deals"), (41, "countries")]
    assert (report.outlet, report.url, report.title) == (
        "tech-ledger.test", "https://tech-ledger.test/news/1", "Surveillance exports mapped")
    assert (report.sentence, report.notes, report.confirmed_by) == (CLAIM, "seen in print", "ann")
    assert [s.candidate_id for s in store.reports.sources(report.id)] == [lead, copy]
    assert candidate(store, copy).report_id == report.id
    assert {e.report_id for e in decisions.history(store, lead)} == {report.id}


def test_undo_takes_the_report_back_exactly_and_its_number_is_not_reused(store) -> None:
    lead, copy = aggregate_story(store)
    before = [candidate(store, c) for c in (lead, copy)]
    decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS, edits={"year": 2019})
    decisions.undo(store, "ann", CLAIMS)
    assert store.reports.reports() == []
    for was in before:
        now = candidate(store, was.id)
        assert (now.status, now.report_id, now.year, now.reviewed_by) == (
            was.status, None, was.year, None)
    outcome = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS)
    assert store.reports.report(outcome.report_id or 0).report_id == "rp-000002"


def test_rejecting_after_confirming_removes_the_report_and_undo_brings_it_back(store) -> None:
    lead, copy = aggregate_story(store)
    decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS)
    decisions.decide(store, lead, "reject", "bob", reason="not_a_deal")
    assert store.reports.reports() == []
    assert {candidate(store, c).report_id for c in (lead, copy)} == {None}
    decisions.undo(store, "bob", CLAIMS)
    [report] = store.reports.reports()
    assert [s.candidate_id for s in store.reports.sources(report.id)] == [lead, copy]
    assert candidate(store, lead).status == "confirmed"
    assert store.registry.deals() == []


def test_a_confirmed_aggregates_corrected_fields_reach_its_report(store) -> None:
    lead, _ = aggregate_story(store)
    outcome = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS)
    decisions.edit(store, lead, "ann", {"vendor": "hikvision", "year": 2020})
    report = store.reports.report(outcome.report_id or 0)
    assert (report.vendor, report.vendors, report.year, report.version) == (
        "hikvision", ["hikvision"], 2020, 2)


def test_nothing_files_an_aggregate_as_a_deal(store) -> None:
    lead, _ = aggregate_story(store)
    row = candidate(store, lead)
    assert registry.suggest_deals(store, row) == []
    with pytest.raises(registry.RegistryError, match="aggregate claim"):
        registry.file_confirmation(store, [row], "ann", "batch")
    with pytest.raises(decisions.ReviewError, match="not under a deal"):
        decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS, deal_id="new")
    with pytest.raises(decisions.ReviewError, match="ClaimReader"):
        decisions.decide(store, lead, "confirm", "ann")
    assert candidate(store, lead).status == "pending"  # refused: nothing written
    deal = story(store, "Huawei signed a cloud contract with Kenya's Ministry of ICT.")
    assert decisions.decide(store, deal, "confirm", "ann", claims=CLAIMS).report_id is None
    assert len(store.registry.deals()) == 1 and store.reports.reports() == []


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def filed(db_path: Path) -> dict[str, int]:
    with Store(db_path) as opened:
        lead, copy = aggregate_story(opened)
        other = story(opened, "Dahua installed cameras in 12 cities across Asia, a report said.",
                      site="=cmd|' /C calc'!A0", vendor="dahua", **AGGREGATE)
    return {"lead": lead, "copy": copy, "other": other}


def test_review_confirm_says_which_report_it_filed(run_cli, filed) -> None:
    result = run_cli("review", "--reviewer", "ann", "confirm", str(filed["lead"]))
    assert result.exit_code == 0, result.output
    assert "filed as report rp-000001" in result.output
    result = run_cli("review", "--reviewer", "ann", "confirm", str(filed["other"]), "--json")
    assert json.loads(result.output)[0]["report_id"] == "rp-000002"
    result = run_cli("review", "--reviewer", "ann", "undo")
    assert result.exit_code == 0 and "is pending again" in result.output
    assert "rp-000002" not in run_cli("reports", "list").output


def test_reports_list_and_show(run_cli, filed) -> None:
    assert "no reports yet" in run_cli("reports", "list").output
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["lead"]))
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["other"]))
    lines = run_cli("reports", "list").output.splitlines()
    assert lines[0].split()[:4] == ["REPORT", "VENDOR", "DEALS", "COUNTRIES"]
    assert lines[1].split()[:5] == ["rp-000001", "huawei", "70", "41", "worldwide"]
    assert lines[2].split()[:5] == ["rp-000002", "dahua", "-", "-", "Asia"]
    rows = json.loads(run_cli("reports", "list", "--vendor", "Dahua", "--json").output)
    assert [r["report_id"] for r in rows] == ["rp-000002"]
    assert "no report names zte" in run_cli("reports", "list", "--vendor", "zte").output
    bad = run_cli("reports", "list", "--vendor", "nobody")
    assert bad.exit_code == 2 and "'nobody' is no watchlist vendor" in bad.output

    shown = run_cli("reports", "show", "rp-000001").output
    assert f"claim: “{CLAIM}”" in shown and "counts: 70 deals, 41 countries" in shown
    assert f"#{filed['copy']}  confirmed" in shown and "outlet: tech-ledger.test" in shown
    record = json.loads(run_cli("reports", "show", "1", "--json").output)
    assert (record["report_id"], record["deals"], record["countries"]) == ("rp-000001", 70, 41)
    assert record["sources"] == ["https://tech-ledger.test/news/1", "https://copy-desk.test/news/2"]


def test_reports_show_refuses_an_unknown_or_malformed_id(run_cli, filed) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["lead"]))
    missing = run_cli("reports", "show", "rp-000009")
    assert missing.exit_code == 1 and missing.output.strip() == "error: no report rp-000009"
    for text in ("dw-000001", "rp-", "0", "rp-12x"):
        malformed = run_cli("reports", "show", text)
        assert malformed.exit_code == 2, text
        assert f"a report id such as rp-000001 or 1, not {text!r}" in malformed.output


def test_reports_export_in_each_format(run_cli, filed, tmp_path) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["lead"]), "--note", "=1+2")
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["other"]))
    target = tmp_path / "out" / "reports.csv"
    result = run_cli("reports", "export", "--format", "csv", "-o", str(target))
    assert result.exit_code == 0 and "exported 2 report(s) as csv" in result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["report_id"] for r in rows] == ["rp-000001", "rp-000002"]
    assert (rows[0]["counts"], rows[0]["deals"], rows[0]["countries"]) == (
        "70 deals; 41 countries", "70", "41")
    assert rows[0]["sources"] == "https://tech-ledger.test/news/1; https://copy-desk.test/news/2"
    assert rows[0]["notes"] == "'=1+2"  # a spreadsheet shows it, never runs it
    assert rows[1]["outlet"] == "'=cmd|' /C calc'!A0"
    lines = run_cli("reports", "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["report_id"] for line in lines] == ["rp-000001", "rp-000002"]
    listed = json.loads(run_cli("reports", "export", "--format", "json", "--vendor", "dahua").stdout)
    assert [r["scope"] for r in listed] == ["Asia"]


def test_reports_export_that_cannot_be_written_says_so_and_writes_nothing(run_cli, filed,
                                                                           tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("reports", "export", "-o", str(blocker / "reports.csv"))
    assert result.exit_code == 1 and f"{blocker / 'reports.csv'}: cannot write" in result.output
    assert blocker.read_text() == "not a directory"


def test_reports_commands_refuse_a_missing_database(run_cli, db_path) -> None:
    for args in (("list",), ("show", "1"), ("export",)):
        result = run_cli("reports", *args)
        assert result.exit_code == 1 and "no such database" in result.output, args
    assert not db_path.exists()
