"""Reports: an aggregate claim ("70 deals in 41 countries") is read for its counts and scope,
filed as a report apart from deals when confirmed, withdrawn (never deleted) by a rejection or
an undo and brought back exactly, refiled into by a later confirmation, and listed, shown,
exported and (for deals filed from aggregates before reports existed) refiled from the
terminal."""


from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

import pytest
from registryfixtures import story

from models.registry import NewReview, QueueEntry, Report
from pipeline.config import SHIPPED_CONFIG_DIR, ConfigError, load_config
from pipeline.review import decisions, registry
from pipeline.review.reports import (
    ClaimReader,
    ClaimWords,
    read_claim,
    refile_deals,
    report_view,
)
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

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
    claim = read_claim("The tally found 1,250 contracts in thirty-two nations.", ENGLISH)
    assert [(c.count, c.noun) for c in claim.counts] == [(1250, "contracts"), (32, "nations")]
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


def test_only_a_count_of_deals_is_the_claims_number_of_deals() -> None:
    # sites, installations, customers are counted, but they are not deals
    claim = read_claim("Hikvision cameras now watch about 3,000 sites in 40 countries.", ENGLISH)
    assert [(c.count, c.noun) for c in claim.counts] == [(3000, "sites"), (40, "countries")]
    assert (claim.deals, claim.countries) == (None, 40)
    assert read_claim("The tally found 1,250 installations for 80 customers.", ENGLISH).deals \
        is None
    # the first count that names deals, wherever it stands
    assert read_claim("Across 3,000 sites, ZTE has signed 12 contracts and 4 loans.",
                      ENGLISH).deals == 12
    assert CLAIMS.read("Huawei equipa 30 ciudades con 12 proyectos.", "es").deals == 12
    assert CLAIMS.read("Huawei équipe 30 villes dans 9 pays.", "fr").deals is None
    assert CLAIMS.read("A Huawei assinou 7 contratos em 30 cidades.", "pt").deals == 7


def test_a_deal_noun_that_is_not_counted_is_one_line_naming_it(make_config) -> None:
    rules = (SHIPPED_CONFIG_DIR / "rules.toml").read_text(encoding="utf-8")
    broken = rules.replace('deal_nouns = ["deals",', 'deal_nouns = ["widgets", "deals",', 1)
    assert broken != rules
    with pytest.raises(ConfigError) as err:
        load_config(make_config({"rules.toml": broken}))
    message = str(err.value)
    assert "rules.toml" in message and "deal_nouns: 'widgets' is not among count_nouns" in message
    assert "\n" not in message


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
                       national_scopes=frozenset({"reinos"}), deal_nouns=frozenset({"pactos"}))
    claim = read_claim("Firmaron 8 pactos en 3 reinos aquí.", words)
    assert (claim.deals, claim.countries, claim.scope) == (8, 3, "worldwide")


# --- filing, undo, rejection ------------------------------------------------------------------


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


def filed_report(store: Store, report_id: int) -> Report:
    found = store.reports.report(report_id)
    assert found is not None
    return found


def as_filed(report: Report) -> dict[str, object]:
    """What a reader of a report sees of it: every field but the bookkeeping times."""
    return {k: v for k, v in asdict(report).items() if k not in ("updated_at", "withdrawn_at")}


def test_undoing_a_confirmation_withdraws_its_report_and_confirming_again_refiles_it(store
                                                                                     ) -> None:
    lead, copy = aggregate_story(store)
    before = [candidate(store, c) for c in (lead, copy)]
    first = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS, edits={"year": 2019})
    filed = filed_report(store, first.report_id or 0)
    decisions.undo(store, "ann", CLAIMS)
    assert store.reports.reports() == [] and store.reports.count() == 0
    for was in before:
        now = candidate(store, was.id)
        assert (now.status, now.report_id, now.year, now.reviewed_by) == (
            was.status, None, was.year, None)
    withdrawn = filed_report(store, filed.id)  # kept, with its number, marked withdrawn
    assert withdrawn.report_id == "rp-000001" and withdrawn.withdrawn_at is not None
    assert store.reports.sources(filed.id) == []

    again = decisions.decide(store, lead, "confirm", "bob", claims=CLAIMS, edits={"vendor": "zte"})
    assert again.report_id == filed.id  # the story's report, not a new number
    [report] = store.reports.reports()
    assert (report.report_id, report.withdrawn_at, report.version) == ("rp-000001", None, 2)
    # its fields read afresh from the claim and this confirmation
    assert (report.vendor, report.year, report.confirmed_by) == ("zte", 2025, "bob")
    assert [s.candidate_id for s in store.reports.sources(report.id)] == [lead, copy]
    other = story(store, "Dahua installed cameras in 12 cities across Asia, a report said.",
                  vendor="dahua", **AGGREGATE)
    assert decisions.decide(store, other, "confirm", "ann", claims=CLAIMS).report_id == 2


def test_a_rejection_withdraws_the_report_and_undo_restores_it_exactly(store) -> None:
    lead, copy = aggregate_story(store)
    outcome = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS, note="in print")
    filed = filed_report(store, outcome.report_id or 0)
    decisions.decide(store, lead, "reject", "bob", reason="not_a_deal")
    assert store.reports.reports() == []
    assert {candidate(store, c).report_id for c in (lead, copy)} == {None}
    view = report_view(store, filed.id)  # still there, saying who withdrew it
    assert view.report.withdrawn_at is not None and view.sources == []
    assert (view.withdrawal.reviewer, view.withdrawal.decision, view.withdrawal.reason) == (
        "bob", "reject", "not_a_deal")
    assert view.withdrawn == (f"withdrawn at {view.report.withdrawn_at}: bob rejected "
                              f"#{lead} (not_a_deal)")

    decisions.undo(store, "bob", CLAIMS)
    [report] = store.reports.reports()
    assert (report.report_id, report.confirmed_by, report.confirmed_at) == (
        "rp-000001", "ann", filed.confirmed_at)
    assert as_filed(report) == as_filed(filed) and report.withdrawn_at is None
    assert [s.candidate_id for s in store.reports.sources(report.id)] == [lead, copy]
    assert candidate(store, lead).status == "confirmed"
    assert store.registry.deals() == []


def test_undoing_a_refiling_puts_the_report_back_as_it_was(store) -> None:
    lead, copy = aggregate_story(store)
    outcome = decisions.decide(store, lead, "confirm", "ann", claims=CLAIMS)
    decisions.decide(store, lead, "reject", "bob", reason="other")
    withdrawn = filed_report(store, outcome.report_id or 0)
    # confirmed again, with a correction: refiled into rp-000001, then taken back
    decisions.decide(store, lead, "confirm", "bob", claims=CLAIMS, edits={"vendor": "zte"})
    decisions.undo(store, "bob", CLAIMS)
    back = filed_report(store, withdrawn.id)
    assert asdict(back) | {"updated_at": None} == asdict(withdrawn) | {"updated_at": None}
    assert store.reports.reports() == []
    assert {candidate(store, c).report_id for c in (lead, copy)} == {None}
    assert report_view(store, back.id).withdrawal.decision == "reject"


def test_undoing_a_second_confirmation_of_a_filed_report_puts_it_back_as_it_was(store) -> None:
    lead, copy = aggregate_story(store)
    live = filed_report(store, decisions.decide(store, lead, "confirm", "ann",
                                                claims=CLAIMS).report_id or 0)
    again = decisions.decide(store, lead, "confirm", "cy", claims=CLAIMS, edits={"vendor": "zte"})
    assert again.report_id == live.id
    assert (filed_report(store, live.id).vendor, filed_report(store, live.id).version) == ("zte", 2)
    decisions.undo(store, "cy", CLAIMS)
    assert asdict(filed_report(store, live.id)) | {"updated_at": None} == \
        asdict(live) | {"updated_at": None}
    assert [s.candidate_id for s in store.reports.sources(live.id)] == [lead, copy]


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
def filed(store_location: str) -> dict[str, int]:
    with Store(store_location) as opened:
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


@pytest.mark.backends("sqlite")  # a file that is not there; a server's: test_server_urls.py
def test_reports_commands_refuse_a_missing_database(run_cli, db_path) -> None:
    for args in (("list",), ("show", "1"), ("export",)):
        result = run_cli("reports", *args)
        assert result.exit_code == 1 and "no such database" in result.output, args
    assert not db_path.exists()


def test_withdrawn_reports_are_left_out_of_lists_exports_and_counts(run_cli, filed) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["lead"]))
    run_cli("review", "--reviewer", "ann", "confirm", str(filed["other"]))
    result = run_cli("review", "--reviewer", "bob", "reject", str(filed["lead"]), "--reason",
                     "other")
    assert result.exit_code == 0, result.output
    assert [r["report_id"] for r in json.loads(run_cli("reports", "list", "--json").output)] \
        == ["rp-000002"]
    assert "rp-000001" not in run_cli("reports", "list").output
    exported = json.loads(run_cli("reports", "export", "--format", "json").stdout)
    assert [r["report_id"] for r in exported] == ["rp-000002"]
    assert json.loads(run_cli("status", "--json").output)["counts"]["reports"] == 1
    shown = run_cli("reports", "show", "rp-000001")
    assert shown.exit_code == 0
    assert shown.output.splitlines()[0].startswith("rp-000001  version 1  WITHDRAWN (withdrawn at ")
    assert f"bob rejected #{filed['lead']} (other))" in shown.output.splitlines()[0]
    record = json.loads(run_cli("reports", "show", "1", "--json").output)
    assert record["withdrawn_by"]["reviewer"] == "bob" and record["withdrawn_at"]
    assert "withdrawn_at" not in exported[0]  # an export's columns stay as documented


def test_reports_list_columns_fit_their_widest_cell(run_cli, store_location) -> None:
    outlet = "the-southern-african-policy-observatory.test"
    with Store(store_location) as opened:
        lead = story(opened, CLAIM, site=outlet, **AGGREGATE)
    run_cli("review", "--reviewer", "ann", "confirm", str(lead))
    header, row = run_cli("reports", "list").output.splitlines()
    assert outlet in row.split()  # whole, not cut at a fixed width
    # each column starts where its heading does; numbers end where theirs ends
    assert row.index("70 deals, 41 countries") == header.index("COUNTS")
    assert row.index(outlet) == header.index("OUTLET")
    assert row.index(" 70 ") + 3 == header.index("DEALS") + len("DEALS")


# --- deals filed from aggregate claims before reports existed ---------------------------------


def confirmed_as_a_deal(store: Store, candidate_ids: list[int], reviewer: str = "ann") -> int:
    """Confirm a story's copies and file them as one deal, as dealwatch did before reports
    (migration 12): the candidates confirmed and audited as one batch, the deal inserted with
    the lead's fields and every copy added as its source; the deal's row id."""
    batch = f"old-{candidate_ids[0]}"
    with store.transaction():
        rows = [candidate(store, c) for c in candidate_ids]
        for row in rows:
            store.candidates.set_candidate(row.id, row.version, {
                "status": "confirmed", "reviewed_by": reviewer,
                "reviewed_at": "2024-11-05T09:30:00Z"})
        deal_id = store.registry.insert_deal(rows[0].fields(), reviewer, batch,
                                             notes=rows[0].note)
        for row in rows:
            store.registry.add_deal_source(deal_id, row.id, batch)
            store.reviews.add_review(NewReview(
                candidate_id=row.id, reviewer=reviewer, decision="confirm", batch=batch,
                previous_status=row.status, version=row.version + 1, deal_id=deal_id,
                previous={"status": row.status, "reviewed_by": None, "reviewed_at": None,
                          "deal_id": None, "report_id": None}))
    return deal_id


@pytest.fixture
def old_deals(store_location: str) -> dict[str, int]:
    """A database where an aggregate claim and its copy were filed as dw-000001 the old way,
    beside a real deal (dw-000002) that stays one."""
    with Store(store_location) as opened:
        lead, copy = aggregate_story(opened)
        aggregate_deal = confirmed_as_a_deal(opened, [lead, copy])
        kenya = story(opened, "Huawei signed a cloud contract with Kenya's Ministry of ICT.")
        real_deal = confirmed_as_a_deal(opened, [kenya], "bob")
    return {"lead": lead, "copy": copy, "deal": aggregate_deal, "real": real_deal}


HINT = ("1 deal was filed from aggregate claims before reports existed: `dealwatch reports "
        "refile` shows the reports it would become")


def test_status_and_migrate_point_to_the_refiling(run_cli, old_deals) -> None:
    assert HINT in run_cli("status").output.splitlines()
    assert json.loads(run_cli("status", "--json").output)["hints"] == [HINT]
    migrated = run_cli("migrate")
    assert migrated.exit_code == 0 and migrated.output.splitlines()[-1] == HINT


def test_reports_refile_shows_first_then_turns_old_aggregate_deals_into_reports(
        run_cli, store_location, old_deals) -> None:
    lead, copy = old_deals["lead"], old_deals["copy"]
    dry = run_cli("reports", "refile")
    assert dry.exit_code == 0
    assert dry.output.splitlines() == [
        f"dw-000001 (#{lead}, #{copy}) -> rp-000001: “{CLAIM}”",
        "1 deal(s) filed from aggregate claims, 1 report(s) — nothing changed; "
        "`dealwatch reports refile --yes` refiles them"]
    with Store(store_location) as opened:  # a dry run changes nothing
        assert [d.deal_id for d in opened.registry.deals()] == ["dw-000001", "dw-000002"]
        assert opened.reports.count() == 0

    done = run_cli("reports", "refile", "--yes")
    assert done.exit_code == 0
    assert done.output.splitlines()[0] == f"dw-000001 (#{lead}, #{copy}) is now rp-000001: “{CLAIM}”"
    with Store(store_location) as opened:
        assert [d.deal_id for d in opened.registry.deals()] == ["dw-000002"]  # the real one stays
        [report] = opened.reports.reports()
        assert (report.report_id, report.deals, report.countries, report.scope) == (
            "rp-000001", 70, 41, "worldwide")
        # confirmed by whom and when the claim was, not by the refiling
        assert (report.confirmed_by, report.confirmed_at) == ("ann", "2024-11-05T09:30:00Z")
        assert report.notes and report.notes.startswith(
            "Filed as deal dw-000001 before reports existed; refiled as a report by "
            "`dealwatch reports refile` at ")
        assert [s.candidate_id for s in opened.reports.sources(report.id)] == [lead, copy]
        assert {candidate(opened, c).deal_id for c in (lead, copy)} == {None}
    assert HINT not in run_cli("status").output
    assert run_cli("reports", "refile").output.strip() == \
        "no deal was filed from an aggregate claim: nothing to refile"
    # its confirmation taken back now withdraws the report, as for one filed as a report
    assert run_cli("review", "--reviewer", "ann", "undo").exit_code == 0
    with Store(store_location) as opened:
        assert opened.reports.count() == 0 and candidate(opened, lead).status == "pending"


def test_a_deal_with_a_real_source_among_its_aggregates_is_no_report(store) -> None:
    lead, _ = aggregate_story(store)
    deal_id = confirmed_as_a_deal(store, [lead])
    kenya = story(store, "Huawei signed a cloud contract with Kenya's Ministry of ICT.")
    confirmed = candidate(store, kenya)
    with store.transaction():
        store.registry.add_deal_source(deal_id, confirmed.id, "later")
    assert refile_deals(store, CLAIMS, apply=True) == []
    assert [d.id for d in store.registry.deals()] == [deal_id]


def test_vendors_from_json_lists_sort_by_bytes_on_a_database_of_another_collation(
        postgres_databases) -> None:
    """Our text columns are COLLATE "C"; what a JSON list holds (the reports' vendor menu) is
    too, or a database created with a language's collation (Debian's createdb: en_US) would
    order it by that language, punctuation ignored, and not as SQLite does."""
    from servers import database_url

    name = "dealwatch_icu_collation"
    with postgres_databases._admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                      "LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-u-ka-shifted'")
    try:
        with Store(database_url(postgres_databases.url, name)) as store:
            elements = store.db.dialect.json_elements("r.vendors", "v")
            found = [r[0] for r in store.db.execute(
                f"SELECT DISTINCT v.value FROM (VALUES (?)) r(vendors), {elements} ORDER BY 1",
                [json.dumps(["chinamobile", "china_telecom", "Zte"])])]
        assert found == sorted(found) == ["Zte", "china_telecom", "chinamobile"]
    finally:
        with postgres_databases._admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
