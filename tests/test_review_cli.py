"""Reviewing from the terminal: `dealwatch review …`, `deals …`, `user add` and `serve`, with the
same functions and audit as the web UI, and the exit codes of DESIGN.md (0 ok, 1 handled, 2 usage)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from registryfixtures import kenya_cloud

from models.registry import QueueEntry, ReviewEvent
from pipeline.review.accounts import authenticate
from pipeline.review.decisions import history
from pipeline.storage import Store
from pipeline.storage.lock import RunLock


@pytest.fixture
def ids(db_path) -> dict[str, int]:
    with Store(db_path) as store:
        return kenya_cloud(store)


def _candidate(db_path: Path, candidate_id: int) -> QueueEntry:
    with Store(db_path) as store:
        return store.candidates.candidate(candidate_id)


def _audit(db_path: Path, candidate_id: int) -> list[ReviewEvent]:
    with Store(db_path) as store:
        return history(store, candidate_id)


def test_list_shows_one_entry_per_story_best_first(run_cli, ids) -> None:
    result = run_cli("review", "list")
    assert result.exit_code == 0, result.output
    assert f"#{ids['mou']} " in result.output and "also: https://syndicated.test/" in result.output
    assert f"#{ids['copy']} " not in result.output  # a copy shows under its story
    assert result.output.index(f"#{ids['mou']} ") < result.output.index(f"#{ids['noise']} ")
    rows = json.loads(run_cli("review", "list", "--json").output)
    assert [r["id"] for r in rows][-1] == ids["noise"]  # lowest score last
    assert {"id", "version", "sentence", "url", "copies", "deal_id"} <= set(rows[0])


def test_list_filters_by_vendor_country_and_status(run_cli, ids) -> None:
    rows = json.loads(run_cli("review", "list", "--country", "ug", "--json").output)
    assert [r["id"] for r in rows] == [ids["uganda"]]
    rows = json.loads(run_cli("review", "list", "--vendor", "zte", "--json").output)
    assert rows == []
    rows = json.loads(run_cli("review", "list", "--vendor", "huawei", "--country", "KE",
                              "--limit", "2", "--json").output)
    assert len(rows) == 2 and {r["country"] for r in rows} == {"KE"}
    run_cli("review", "--reviewer", "ann", "defer", str(ids["uganda"]))
    rows = json.loads(run_cli("review", "list", "--status", "deferred", "--json").output)
    assert [r["id"] for r in rows] == [ids["uganda"]]
    assert run_cli("review", "list", "--status", "maybe").exit_code == 2


def test_show_has_article_evidence_copies_suggestions_and_history(run_cli, ids) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    result = run_cli("review", "show", str(ids["signed"]))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Story 2" in out and "daily-nation.test" in out and "2025-06-02" in out
    assert "evidence: …NAIROBI" in out and "“Kenya's Ministry of ICT and Huawei signed" in out
    assert "KE (Kenya)" in out and "value: USD 120 million" in out
    assert "dw-000001" in out and "same counterpart" in out  # where it would be filed
    view = json.loads(run_cli("review", "show", str(ids["mou"]), "--json").output)
    assert set(view) == {"candidate", "article", "evidence", "entities", "copies", "suggestions",
                         "history"}
    assert view["candidate"]["status"] == "confirmed" and view["candidate"]["deal_id"] == "dw-000001"
    assert view["article"]["url"] == "https://nairobi-wire.test/news/1"
    assert [c["url"] for c in view["copies"]] == ["https://syndicated.test/news/6"]
    assert view["evidence"]["before"].startswith("NAIROBI")
    assert [(h["reviewer"], h["decision"]) for h in view["history"]] == [("ann", "confirm")]
    assert "ann" in run_cli("review", "show", str(ids["mou"])).output


def test_confirm_with_edits_and_note_files_a_deal_under_the_reviewer(run_cli, ids, db_path) -> None:
    result = run_cli("review", "--reviewer", "ann", "confirm", str(ids["uganda"]),
                     "--set", "stage=under_construction", "--set", "value=7,500,000",
                     "--set", "currency=usd", "--note", "police tender documents")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"confirmed #{ids['uganda']}; filed under dw-000001"
    row = _candidate(db_path, ids["uganda"])
    assert (row.status, row.reviewed_by, row.stage, row.value, row.currency) == (
        "confirmed", "ann", "under_construction", 7_500_000.0, "USD")
    [audit] = _audit(db_path, ids["uganda"])
    assert audit.note == "police tender documents"
    assert audit.edits["stage"] == ["signed", "under_construction"]
    with Store(db_path) as store:
        deal = store.registry.deal(row.deal_id)
    assert (deal.stage, deal.value, deal.notes) == ("under_construction", 7_500_000.0,
                                                             "police tender documents")


def test_the_reviewer_comes_from_the_option_the_environment_or_the_os(run_cli, ids, db_path,
                                                                      monkeypatch) -> None:
    run_cli("review", "defer", str(ids["uganda"]), env={"DEALWATCH_REVIEWER": "bob"})
    assert _candidate(db_path, ids["uganda"]).reviewed_by == "bob"
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    run_cli("review", "defer", str(ids["noise"]))
    assert _candidate(db_path, ids["noise"]).reviewed_by == "osuser"
    run_cli("review", "--reviewer", "cy", "reject", str(ids["signed"]), "--reason", "duplicate")
    assert _candidate(db_path, ids["signed"]).reviewed_by == "cy"


def test_confirm_into_a_chosen_or_a_new_deal(run_cli, ids, db_path) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    assert run_cli("review", "--reviewer", "ann", "confirm", str(ids["signed"]),
                   "--new-deal").output.strip().endswith("dw-000002")
    result = run_cli("review", "--reviewer", "ann", "confirm", str(ids["completed"]), "--deal",
                     "dw-000002", "--json")
    assert json.loads(result.output)[0]["deal_id"] == "dw-000002"
    both = run_cli("review", "confirm", str(ids["uganda"]), "--deal", "1", "--new-deal")
    assert both.exit_code == 2 and "exclude each other" in both.output
    missing = run_cli("review", "confirm", str(ids["uganda"]), "--deal", "dw-000099")
    assert missing.exit_code == 1 and missing.output.strip() == "error: no deal dw-000099 in the registry"
    assert run_cli("review", "confirm", str(ids["uganda"]), "--deal", "first").exit_code == 2


def test_reject_needs_a_known_reason_and_records_it(run_cli, ids, db_path) -> None:
    assert run_cli("review", "reject", str(ids["noise"])).exit_code == 2
    assert run_cli("review", "reject", str(ids["noise"]), "--reason", "boring").exit_code == 2
    result = run_cli("review", "--reviewer", "ann", "reject", str(ids["noise"]), "--reason",
                     "not_a_deal", "--note", "a phone launch")
    assert result.exit_code == 0 and result.output.strip() == f"rejected #{ids['noise']}"
    row = _candidate(db_path, ids["noise"])
    assert (row.status, row.reason, row.note) == ("rejected", "not_a_deal", "a phone launch")


def test_a_story_and_its_copy_are_decided_together(run_cli, ids, db_path) -> None:
    result = run_cli("review", "--reviewer", "ann", "defer", str(ids["mou"]), "--json")
    [outcome] = json.loads(result.output)
    assert outcome["candidate_ids"] == [ids["mou"], ids["copy"]]
    assert _candidate(db_path, ids["copy"]).status == "deferred"


def test_edit_changes_fields_and_bad_values_are_one_line_errors(run_cli, ids, db_path) -> None:
    result = run_cli("review", "--reviewer", "ann", "edit", str(ids["noise"]), "--set",
                     "country=ug", "--set", "deal_types=cloud,data_centre")
    assert result.exit_code == 0, result.output
    row = _candidate(db_path, ids["noise"])
    assert (row.status, row.country, row.deal_types, row.deal_type) == (
        "pending", "UG", ["cloud", "data_centre"], "cloud")
    assert _audit(db_path, ids["noise"])[0].decision == "edit"
    for args, message in (
        (["--set", "colour=red"], "colour: not an editable field"),
        (["--set", "stage=rumoured"], "stage: one of"),
        (["--set", "vendor=acme"], "vendor: 'acme' is not a watchlist vendor id"),
        (["--set", "year=soon"], "year: a whole number"),
    ):
        bad = run_cli("review", "edit", str(ids["noise"]), *args)
        assert bad.exit_code == 1, bad.output
        assert bad.output.count("\n") == 1 and message in bad.output
    assert run_cli("review", "edit", str(ids["noise"]), "--set", "stage").exit_code == 2
    assert run_cli("review", "edit", str(ids["noise"]), "--set", "a=1", "--set", "a=2").exit_code == 2


def test_a_stale_version_is_a_conflict_and_changes_nothing(run_cli, ids, db_path) -> None:
    seen = _candidate(db_path, ids["signed"]).version
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["signed"]), "--expect-version", str(seen))
    late = run_cli("review", "--reviewer", "bob", "reject", str(ids["signed"]), "--reason",
                   "not_a_deal", "--expect-version", str(seen))
    assert late.exit_code == 1
    assert "changed by ann" in late.output and "reload it" in late.output
    assert _candidate(db_path, ids["signed"]).status == "confirmed"


def test_unknown_candidate_is_a_handled_error(run_cli, ids) -> None:
    for args in (["show", "999"], ["confirm", "999"], ["defer", "999"]):
        result = run_cli("review", *args)
        assert result.exit_code == 1 and result.output.strip() == "error: no candidate #999"


def test_undo_takes_back_the_reviewers_last_decision_only(run_cli, ids, db_path) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    run_cli("review", "--reviewer", "bob", "reject", str(ids["noise"]), "--reason", "not_a_deal")
    result = run_cli("review", "--reviewer", "ann", "undo")
    assert result.exit_code == 0, result.output
    assert f"undone: #{ids['mou']} is pending again" in result.output
    assert _candidate(db_path, ids["mou"]).status == "pending"
    assert _candidate(db_path, ids["noise"]).status == "rejected"  # bob's stays
    with Store(db_path) as store:
        assert store.registry.deals() == []  # the deal the confirmation created is gone
    nothing = run_cli("review", "--reviewer", "ann", "undo")
    assert nothing.exit_code == 1 and "ann has no decision to undo" in nothing.output


def test_bulk_reject_is_all_or_nothing(run_cli, ids, db_path) -> None:
    result = run_cli("review", "--reviewer", "ann", "bulk-reject", str(ids["noise"]),
                     str(ids["mou"]), "--reason", "other")
    assert result.exit_code == 0, result.output
    assert {_candidate(db_path, i).status for i in (ids["noise"], ids["mou"], ids["copy"])} == {
        "rejected"}
    failed = run_cli("review", "bulk-reject", str(ids["uganda"]), "999", "--reason", "other")
    assert failed.exit_code == 1
    assert _candidate(db_path, ids["uganda"]).status == "pending"
    assert run_cli("review", "bulk-reject", "--reason", "other").exit_code == 2


def test_reviews_work_while_the_nightly_run_holds_the_lock(run_cli, ids, db_path) -> None:
    with RunLock(db_path, "run"):
        result = run_cli("review", "--reviewer", "ann", "confirm", str(ids["uganda"]))
    assert result.exit_code == 0, result.output


# --- deals ----------------------------------------------------------------------------------


def test_deals_list_show_merge_and_split(run_cli, ids, db_path) -> None:
    assert "the registry is empty" in run_cli("deals", "list").output
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["completed"]), "--new-deal")
    listing = run_cli("deals", "list").output.splitlines()
    assert [line.split()[0] for line in listing[1:-1]] == ["dw-000001", "dw-000002"]
    assert listing[1].split()[-4:-1] == ["2", "1", "2025-01-10"]  # sources, independent, first

    merged = run_cli("deals", "merge", "dw-000001", "2", "--yes")
    assert merged.exit_code == 0, merged.output
    assert merged.output.strip() == "merged dw-000002 into dw-000001 (3 sources now)"
    shown = run_cli("deals", "show", "dw-000001").output
    assert "stages: mou (2025-01-10) → completed (2026-03-15)" in shown
    assert "sources (3;" in shown and "https://syndicated.test/news/6" in shown
    assert "merged into dw-000001" in run_cli("deals", "show", "2").output
    assert [r["deal_id"] for r in json.loads(run_cli("deals", "list", "--json").output)] == [
        "dw-000001"]
    again = run_cli("deals", "merge", "1", "2", "--yes")
    assert again.exit_code == 1 and again.output.strip() == "error: dw-000002 was merged into dw-000001"

    split = run_cli("deals", "--reviewer", "bob", "split", "dw-000001", "--source",
                    str(ids["completed"]))
    assert split.exit_code == 0, split.output
    # exactly the sources the merge brought in: the merged deal comes back as it was
    assert split.output.strip() == "moved 1 source(s) of dw-000001 back into dw-000002, as before the merge"
    record = json.loads(run_cli("deals", "show", "2", "--json").output)
    assert (record["stage"], record["confirmed_by"], len(record["sources"])) == ("completed", "ann", 1)
    everything = run_cli("deals", "split", "1", "--source", str(ids["mou"]), "--source",
                         str(ids["copy"]))
    assert everything.exit_code == 1 and "not none or all" in everything.output
    assert run_cli("deals", "show", "dw-x").exit_code == 2
    assert run_cli("deals", "show", "77").exit_code == 1


def test_registry_changes_through_the_cli_give_deals_a_new_version(run_cli, ids, db_path) -> None:
    # A source that changes neither the deal's dates nor its stage still changes its record.
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["completed"]), "--deal", "1")
    with Store(db_path) as store:
        before = store.registry.deal(1).version
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["signed"]), "--deal", "1",
            "--set", "value=", "--set", "currency=")
    with Store(db_path) as store:
        assert len(store.registry.deal_sources(1)) == 4
        assert store.registry.deal(1).version > before
        before = store.registry.deal(1).version
    run_cli("review", "--reviewer", "ann", "undo")
    with Store(db_path) as store:
        assert store.registry.deal(1).version > before


def test_undoing_a_confirmation_gives_its_deal_back_as_it_was(run_cli, ids) -> None:
    def shown() -> dict:
        return json.loads(run_cli("deals", "show", "dw-000001", "--json").stdout)

    assert run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"])).exit_code == 0
    before = shown()
    assert (before["value"], before["currency"], before["stage"]) == (None, None, "mou")
    # the signed contract's article knows the price: its confirmation fills it in
    confirmed = run_cli("review", "--reviewer", "ann", "confirm", str(ids["signed"]))
    assert "filed under dw-000001" in confirmed.output, confirmed.output
    filled = shown()
    assert (filled["value"], filled["currency"], filled["stage"]) == (120_000_000, "USD", "signed")
    assert run_cli("review", "--reviewer", "ann", "undo").exit_code == 0
    after = shown()
    assert after["version"] > before["version"]  # undone, but a change: a new version
    assert {k: v for k, v in after.items() if k != "version"} == {
        k: v for k, v in before.items() if k != "version"}


# --- accounts and the web UI ----------------------------------------------------------------


def test_user_add_from_stdin_and_from_a_prompt(run_cli, db_path) -> None:
    result = run_cli("user", "add", "ann", "--password-stdin", input="correct horse battery\n")
    assert result.exit_code == 0 and "created reviewer ann" in result.output
    prompted = run_cli("user", "add", "bob", input="staple-in-the-box\nstaple-in-the-box\n")
    assert prompted.exit_code == 0, prompted.output
    assert "staple" not in prompted.output  # no echo
    with Store(db_path) as store:
        assert authenticate(store, "ann", "correct horse battery")
        assert authenticate(store, "bob", "staple-in-the-box")
    again = run_cli("user", "add", "ann", "--password-stdin", input="another long one\n")
    assert again.exit_code == 1 and "exists already" in again.output
    short = run_cli("user", "add", "cy", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    mismatch = run_cli("user", "add", "dee", input="first-password\nsecond-password\n")
    assert mismatch.exit_code != 0
    with Store(db_path) as store:
        assert store.accounts.user("dee") is None


def test_serve_hands_the_options_to_the_web_app(run_cli, db_path, monkeypatch) -> None:
    calls: list[tuple] = []
    fake = types.ModuleType("pipeline.review.web")
    fake.run_server = lambda config, path, **kw: calls.append((config, path, kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipeline.review.web", fake)
    assert run_cli("init").exit_code == 0  # serve refuses a database that is not there
    assert run_cli("serve").exit_code == 0
    assert run_cli("serve", "--host", "0.0.0.0", "--port", "9000", "--public").exit_code == 0
    assert run_cli("serve", "--workers", "3").exit_code == 0
    assert run_cli("serve", "--workers", "0").exit_code == 2
    assert calls[0][1] == db_path
    assert calls[0][2] == {"host": "127.0.0.1", "port": 8765, "allow_public": False, "workers": 1}
    assert calls[1][2] == {"host": "0.0.0.0", "port": 9000, "allow_public": True, "workers": 1}
    assert calls[2][2] == {"host": "127.0.0.1", "port": 8765, "allow_public": False, "workers": 3}
    assert len(calls) == 3
