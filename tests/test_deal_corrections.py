"""Correcting the registry safely from the terminal: `deals edit`, a merge that shows what changes
and asks first, splits that keep the deal's id, fields and notes, `deals undo` for all three, a
`review undo` that never skips a correction, and deal ids that read dw-000001 everywhere."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest
from registryfixtures import kenya_cloud, story

from models.registry import Deal, parse_deal_number
from pipeline.review.decisions import decide
from pipeline.review.registry import merge_deals, preview_merge
from pipeline.review.views import deal_view
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


@pytest.fixture
def ids(store_location) -> dict[str, int]:
    with Store(store_location) as store:
        return kenya_cloud(store)


@pytest.fixture
def terminal(monkeypatch) -> None:
    """As if run on a terminal: `deals merge` may ask."""
    monkeypatch.setattr("pipeline.cli.deals._can_ask", lambda: True)


def _deal(store_location: str, deal_id: int) -> Deal:
    with Store(store_location) as store:
        deal = store.registry.deal(deal_id)
    assert deal is not None
    return deal


def _sources(store_location: str, deal_id: int) -> list[int]:
    with Store(store_location) as store:
        return sorted(s.candidate_id for s in store.registry.deal_sources(deal_id))


def _stages(store_location: str, deal_id: int) -> list[str]:
    with Store(store_location) as store:
        return [s.stage for s in store.registry.deal_stages(deal_id)]


def _kenya_and_uganda(run_cli, ids) -> None:
    """dw-000001: the Kenyan cloud (MoU and its copy), with a note; dw-000002: the Ugandan safe
    city, with its own note."""
    assert run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]), "--note",
                   "ministry press release").exit_code == 0
    assert run_cli("review", "--reviewer", "ann", "confirm", str(ids["uganda"]), "--note",
                   "police gazette").exit_code == 0


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


# --- edit ---------------------------------------------------------------------------------------


def test_edit_sets_fields_and_undo_puts_them_back(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    before = _deal(store_location, 1)
    result = run_cli("deals", "--reviewer", "ann", "edit", "dw-000001", "--set", "stage=signed",
                     "--set", "value=120,000,000", "--set", "currency=usd", "--set",
                     "notes=contract seen", "--expect-version", str(before.version))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("edited dw-000001: ")
    assert "stage: mou → signed" in result.output and "`deals undo` takes it back" in result.output
    edited = _deal(store_location, 1)
    assert (edited.stage, edited.value, edited.currency, edited.notes) == (
        "signed", 120_000_000.0, "USD", "contract seen")
    assert edited.version > before.version
    assert _stages(store_location, 1) == ["mou", "signed"]  # the new stage joins the history, by hand
    shown = run_cli("deals", "show", "dw-000001").output
    assert "the edit of dw-000001" in shown and "ann" in shown
    record = json.loads(run_cli("deals", "show", "1", "--json").output)
    assert record["stage_history"][-1] == {"stage": "signed", "reported": None, "url": None}

    undone = run_cli("deals", "--reviewer", "ann", "undo")
    assert undone.exit_code == 0, undone.output
    assert undone.output.startswith("undone: the edit of dw-000001 (")
    back = _deal(store_location, 1)
    assert (back.stage, back.value, back.currency, back.notes) == (
        "mou", None, None, "ministry press release")
    assert _stages(store_location, 1) == ["mou"]
    assert back.version > edited.version  # an undo is a change too (export --since sees it)
    nothing = run_cli("deals", "--reviewer", "ann", "undo")
    assert nothing.exit_code == 1
    assert one_line(nothing.output) == "error: ann has no registry correction to undo"


def test_edit_checks_values_as_review_edit_does(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    version = _deal(store_location, 1).version
    for setting, message in [
        ("country=Kenya", "error: country: an ISO 3166-1 alpha-2 code such as KE, not 'Kenya'"),
        ("stage=done", "error: stage: one of proposed, mou, signed"),
        ("vendor=acme", "error: vendor: 'acme' is not a watchlist vendor id"),
        ("year=1850", "error: year: 1850 is out of range"),
        ("colour=red", "error: colour: not a deal field (one of vendor, vendors, country, "
                       "counterpart, counterpart_type, deal_type, deal_types, stage, value, "
                       "currency, year, notes)"),
    ]:
        result = run_cli("deals", "edit", "dw-000001", "--set", setting)
        assert result.exit_code == 1, setting
        assert one_line(result.output).startswith(message), result.output
    # the same words as `review edit` for a candidate: one validation for both
    candidate = run_cli("review", "edit", str(ids["signed"]), "--set", "country=Kenya")
    assert one_line(candidate.output) == \
        "error: country: an ISO 3166-1 alpha-2 code such as KE, not 'Kenya'"
    assert _deal(store_location, 1).version == version  # nothing written
    assert run_cli("deals", "edit", "dw-000001").exit_code == 2  # no --set: a usage error
    same = run_cli("deals", "edit", "dw-000001", "--set", "country=ke")
    assert same.exit_code == 1 and "nothing to change" in same.output
    stale = run_cli("deals", "edit", "1", "--set", "year=2024", "--expect-version",
                    str(version - 1))
    assert stale.exit_code == 1 and "reload it and edit again" in stale.output
    listed = run_cli("deals", "edit", "1", "--set", "deal_types=data_centre,cloud")
    assert listed.exit_code == 0, listed.output
    edited = _deal(store_location, 1)
    assert edited.deal_types == ["data_centre", "cloud"]
    assert edited.deal_type == "cloud"  # the first type stays first while it is still listed


def test_a_merged_deal_is_edited_through_the_deal_it_lives_on_as(run_cli, ids) -> None:
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "merge", "1", "2", "--yes").exit_code == 0
    result = run_cli("deals", "edit", "dw-000002", "--set", "year=2024")
    assert result.exit_code == 1
    assert one_line(result.output) == "error: dw-000002 was merged into dw-000001"


# --- merge: shown first, asked first --------------------------------------------------------


def test_merge_off_a_terminal_needs_yes(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    result = run_cli("deals", "merge", "dw-000001", "dw-000002")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert line.startswith("error: merging dw-000002 into dw-000001 (the countries differ)")
    assert "add --yes" in line
    assert _deal(store_location, 2).merged_into is None  # nothing merged
    done = run_cli("deals", "--reviewer", "ann", "merge", "dw-000001", "dw-000002", "--yes")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "merged dw-000002 into dw-000001 (3 sources now)"
    assert "warning: The countries differ: dw-000001 is in Kenya (KE), dw-000002 in Uganda (UG)" \
        in done.stderr
    assert _deal(store_location, 2).merged_into == 1


def test_merge_on_a_terminal_shows_what_changes_and_asks(run_cli, ids, store_location, terminal) -> None:
    _kenya_and_uganda(run_cli, ids)
    declined = run_cli("deals", "merge", "dw-000001", "dw-000002", input="\n")
    assert declined.exit_code == 0, declined.output
    out = declined.output
    assert "merge dw-000002 into dw-000001:" in out
    assert "dw-000002 huawei, UG, Uganda Police Force; safe_city; signed" in out
    assert "its 1 source(s) and 1 stage report(s) move to dw-000001" in out
    assert "dw-000001 deal_types: cloud → cloud, safe_city" in out
    assert "dw-000001 stage: mou → signed" in out
    assert "warning: The countries differ" in out and "warning: The counterparts differ" in out
    assert "These look like two deals. Merge them anyway? [y/N]" in out  # warns harder
    assert out.rstrip().endswith("not merged")
    assert _deal(store_location, 2).merged_into is None

    agreed = run_cli("deals", "--reviewer", "ann", "merge", "1", "2", input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert agreed.output.rstrip().endswith("merged dw-000002 into dw-000001 (3 sources now)")
    assert _deal(store_location, 2).merged_into == 1


def test_a_merge_of_one_deal_recorded_twice_asks_plainly(run_cli, ids, terminal) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["completed"]), "--new-deal")
    result = run_cli("deals", "merge", "dw-000001", "dw-000002", input="y\n")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and "Merge? [y/N]" in result.output
    assert "dw-000001 stage: mou → completed" in result.output


def test_the_preview_is_what_the_merge_does(store_location) -> None:
    with Store(store_location) as store:
        ids = kenya_cloud(store)
        keep = decide(store, ids["mou"], "confirm", "ann").deal_id
        absorb = decide(store, ids["signed"], "confirm", "ann", deal_id="new").deal_id
        preview = preview_merge(store, keep, absorb)
        assert preview.serious == () and preview.differences == {}
        assert set(preview.changes) == {"stage", "last_reported", "value", "currency"}
        merge_deals(store, keep, absorb, "ann")
        merged = store.registry.deal(keep)
        assert {name: getattr(merged, name) for name in preview.changes} == {
            name: after for name, (_, after) in preview.changes.items()}


# --- undo of merge, split and edit --------------------------------------------------------------


def test_undo_of_a_merge_brings_both_deals_back(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    kenya, uganda = _deal(store_location, 1), _deal(store_location, 2)
    assert run_cli("deals", "--reviewer", "ann", "merge", "1", "2", "--yes").exit_code == 0
    assert _deal(store_location, 1).deal_types == ["cloud", "safe_city"]
    result = run_cli("deals", "--reviewer", "ann", "undo")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("undone: the merge of dw-000002 into dw-000001 (by ann at ")
    after_kenya, after_uganda = _deal(store_location, 1), _deal(store_location, 2)
    for before, after in ((kenya, after_kenya), (uganda, after_uganda)):
        assert after.fields() == before.fields()
        assert (after.notes, after.confirmed_at, after.merged_into) == (
            before.notes, before.confirmed_at, None)
    assert _sources(store_location, 1) == sorted([ids["mou"], ids["copy"]])
    assert _sources(store_location, 2) == [ids["uganda"]]
    assert _stages(store_location, 1) == ["mou"] and _stages(store_location, 2) == ["signed"]
    listed = [r["deal_id"] for r in json.loads(run_cli("deals", "list", "--json").output)]
    assert listed == ["dw-000001", "dw-000002"]


def test_a_split_that_reverses_a_merge_restores_the_merged_deal(run_cli, ids, store_location) -> None:
    """The issue's case: Uganda merged into Kenya by mistake, then split apart again."""
    _kenya_and_uganda(run_cli, ids)
    uganda = _deal(store_location, 2)
    assert run_cli("deals", "--reviewer", "ann", "merge", "1", "2", "--yes").exit_code == 0
    split = run_cli("deals", "--reviewer", "bob", "split", "dw-000001", "--source",
                    str(ids["uganda"]))
    assert split.exit_code == 0, split.output
    assert split.output.strip() == \
        "moved 1 source(s) of dw-000001 back into dw-000002, as before the merge"
    kenya, back = _deal(store_location, 1), _deal(store_location, 2)
    assert (kenya.deal_types, kenya.stage, kenya.last_reported) == (["cloud"], "mou", "2025-01-11")
    assert kenya.notes == "ministry press release"
    assert back.merged_into is None and back.deal_id == "dw-000002"  # no new id
    assert (back.notes, back.confirmed_by, back.confirmed_at) == (
        "police gazette", uganda.confirmed_by, uganda.confirmed_at)
    assert back.fields() == uganda.fields()
    with Store(store_location) as store:
        assert store.counts()["deals"] == 2  # no third deal
    # bob's split is his to undo: the two are merged again, as ann left them
    assert run_cli("deals", "--reviewer", "bob", "undo").exit_code == 0
    assert _deal(store_location, 2).merged_into == 1
    assert _sources(store_location, 1) == sorted([ids["mou"], ids["copy"], ids["uganda"]])
    # and ann's merge, then hers
    assert run_cli("deals", "--reviewer", "ann", "undo").exit_code == 0
    assert _deal(store_location, 2).merged_into is None and _sources(store_location, 2) == [ids["uganda"]]


def test_a_split_keeps_the_deal_and_recomputes_each_sides_types(run_cli, ids, store_location) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]), "--note", "first report")
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["uganda"]), "--deal", "dw-000001")
    before = _deal(store_location, 1)
    assert before.deal_types == ["cloud", "safe_city"]
    split = run_cli("deals", "--reviewer", "bob", "split", "dw-000001", "--source",
                    str(ids["uganda"]))
    assert split.exit_code == 0, split.output
    assert split.output.strip() == "moved 1 source(s) of dw-000001 into the new deal dw-000002"
    kept, new = _deal(store_location, 1), _deal(store_location, 2)
    assert (kept.deal_id, kept.notes, kept.confirmed_at) == (
        "dw-000001", "first report", before.confirmed_at)
    assert (kept.deal_types, kept.stage, kept.last_reported) == (["cloud"], "mou", "2025-01-11")
    assert (new.country, new.deal_types, new.stage, new.notes) == (
        "UG", ["safe_city"], "signed", "split from dw-000001")

    undone = run_cli("deals", "--reviewer", "bob", "undo")
    assert undone.exit_code == 0, undone.output
    assert undone.output.startswith("undone: the split of dw-000002 from dw-000001")
    assert _deal(store_location, 1).fields() == before.fields()
    assert _sources(store_location, 1) == sorted([ids["mou"], ids["copy"], ids["uganda"]])
    assert _deal(store_location, 2).merged_into == 1  # the deal it made goes back into dw-000001
    shown = run_cli("deals", "show", "dw-000002").output
    assert "merged into dw-000001" in shown


def test_undo_is_refused_when_the_deal_changed_since(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "--reviewer", "ann", "merge", "1", "2", "--yes").exit_code == 0
    # bob files another report under the merged deal
    run_cli("review", "--reviewer", "bob", "confirm", str(ids["signed"]), "--deal", "dw-000001")
    result = run_cli("deals", "--reviewer", "ann", "undo")
    assert result.exit_code == 1
    assert one_line(result.output).startswith(
        "error: dw-000001 has changed since the merge of dw-000002 into dw-000001")
    assert _deal(store_location, 2).merged_into == 1  # nothing taken back


# --- review undo never skips a correction ----------------------------------------------------


def test_review_undo_does_not_skip_over_a_merge(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "--reviewer", "ann", "merge", "1", "2", "--yes").exit_code == 0
    refused = run_cli("review", "--reviewer", "ann", "undo")
    assert refused.exit_code == 1
    assert one_line(refused.output) == (
        "error: ann's last change was a registry correction, the merge of dw-000002 into "
        "dw-000001: `dealwatch deals undo` takes it back first (review undo takes back review "
        "decisions only, and never past a later registry correction)")
    with Store(store_location) as store:
        assert store.candidates.candidate(ids["uganda"]).status == "confirmed"  # untouched
    assert run_cli("deals", "--reviewer", "ann", "undo").exit_code == 0
    # the merge taken back, review undo takes back the decision before it
    undone = run_cli("review", "--reviewer", "ann", "undo")
    assert undone.exit_code == 0, undone.output
    assert f"undone: #{ids['uganda']} is pending again" in undone.output
    # someone else's merge is not ann's: her undo takes back her own last decision
    assert run_cli("review", "--reviewer", "ann", "confirm", str(ids["uganda"])).exit_code == 0
    assert run_cli("deals", "--reviewer", "bob", "merge", "1", "3", "--yes").exit_code == 0
    assert run_cli("review", "--reviewer", "ann", "undo").exit_code == 0


def test_review_undo_with_only_a_correction_left_names_it(run_cli, ids) -> None:
    _kenya_and_uganda(run_cli, ids)  # ann's decisions
    assert run_cli("deals", "--reviewer", "bob", "merge", "1", "2", "--yes").exit_code == 0
    result = run_cli("review", "--reviewer", "bob", "undo")
    assert result.exit_code == 1
    assert one_line(result.output) == (
        "error: bob has no decision to undo; the last registry correction, the merge of "
        "dw-000002 into dw-000001, is taken back by `dealwatch deals undo`")


# --- deal ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dw-000001", "DW-000001", "dw-1", "1", "000001"])
def test_a_deal_is_named_as_people_write_it(run_cli, ids, name) -> None:
    run_cli("review", "--reviewer", "ann", "confirm", str(ids["mou"]))
    result = run_cli("deals", "show", name, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deal_id"] == "dw-000001"


@pytest.mark.parametrize("name", ["dw-x", "²", "0", "9" * 25, "dw-1.5"])
def test_a_name_that_can_be_no_deal_is_a_usage_error(run_cli, ids, name) -> None:
    result = run_cli("deals", "show", name)
    assert result.exit_code == 2
    assert f"a deal id such as dw-000003 or 3, not {name!r}" in result.output


def test_messages_name_deals_by_their_registry_id(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    missing = run_cli("deals", "show", "77")
    assert one_line(missing.output) == "error: no deal dw-000077 in the registry"
    assert one_line(run_cli("deals", "merge", "1", "9", "--yes").output) == \
        "error: no deal dw-000009 in the registry"
    assert one_line(run_cli("deals", "edit", "dw-000042", "--set", "year=2024").output) == \
        "error: no deal dw-000042 in the registry"
    assert run_cli("deals", "edit", "dw-x", "--set", "year=2024").exit_code == 2
    merged = run_cli("deals", "--reviewer", "ann", "merge", "dw-000001", "2", "--yes")
    again = run_cli("deals", "merge", "dw-000001", "dw-000002", "--yes")
    assert "dw-000002 into dw-000001" in merged.stdout
    assert one_line(again.output) == "error: dw-000002 was merged into dw-000001"
    exported = run_cli("export", "--format", "jsonl").stdout
    assert [json.loads(line)["deal_id"] for line in exported.splitlines()] == ["dw-000001"]
    for text in (merged.output, again.output, run_cli("deals", "show", "1").output):
        assert "deal 1" not in text and "deal 2" not in text


def test_parse_deal_number() -> None:
    assert [parse_deal_number(t) for t in ("dw-000042", "DW-42", " 42 ", "000042")] == [42] * 4
    assert [parse_deal_number(t) for t in ("dw-", "dw-x", "0", "²", "-3", "9" * 25,
                                           str(2**63), "dw-1.5")] == [None] * 8


# --- the audit ---------------------------------------------------------------------------------


def test_the_deal_audit_is_append_only(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "--reviewer", "ann", "merge", "1", "2", "--yes").exit_code == 0
    with Store(store_location) as store:
        rows = list(store.db.query("SELECT reviewer, action, deal_id, other_deal_id, sources "
                                   "FROM deal_corrections"))
        assert rows == [{"reviewer": "ann", "action": "merge", "deal_id": 1, "other_deal_id": 2,
                         "sources": f"[{ids['uganda']}]"}]
        for statement in ("UPDATE deal_corrections SET reviewer = 'eve'",
                          "DELETE FROM deal_corrections"):
            with pytest.raises((sqlite3.DatabaseError, psycopg.Error),
                               match="deal_corrections is an append-only audit table"):
                store.db.execute(statement)


def test_withdrawing_a_deal_takes_the_deals_merged_into_it_along(store_location) -> None:
    with Store(store_location) as store:
        ids = kenya_cloud(store)
        keep = decide(store, ids["mou"], "confirm", "ann").deal_id
        absorb = decide(store, ids["completed"], "confirm", "ann", deal_id="new").deal_id
        merge_deals(store, keep, absorb, "ann")
        decide(store, ids["mou"], "reject", "ann", reason="not_a_deal")
        decide(store, ids["completed"], "reject", "ann", reason="not_a_deal")  # the last source
        assert store.registry.deals(include_merged=True) == []
        fibre = story(store, "Huawei will lay fibre for Kenya Power.", counterpart="Kenya Power")
        assert decide(store, fibre, "confirm", "ann").deal_id == 3  # numbers are never reused


def test_a_deal_page_offers_no_undo_that_would_be_refused(run_cli, ids, store_location) -> None:
    """Marking a source official changes the deal after ann's edit: her edit can no longer be
    undone, so her view of the deal does not offer it."""
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "--reviewer", "ann", "edit", "dw-000001", "--set",
                   "notes=seen at the ministry").exit_code == 0
    with Store(store_location) as store:
        assert deal_view(store, 1, reviewer="ann").undoable is not None
    assert run_cli("deals", "source-official", "dw-000001", str(ids["mou"])).exit_code == 0
    with Store(store_location) as store:
        assert deal_view(store, 1, reviewer="ann").undoable is None
    assert run_cli("deals", "--reviewer", "ann", "undo").exit_code == 1


def test_the_first_vendor_listed_leads_and_a_deal_keeps_one(run_cli, ids, store_location) -> None:
    _kenya_and_uganda(run_cli, ids)
    assert run_cli("deals", "edit", "dw-000001", "--set", "vendors=zte, huawei").exit_code == 0
    edited = _deal(store_location, 1)
    assert (edited.vendor, edited.vendors) == ("zte", ["zte", "huawei"])
    emptied = run_cli("deals", "edit", "dw-000001", "--set", "vendors=")
    assert emptied.exit_code == 1 and "at least one vendor" in emptied.output
    assert _deal(store_location, 1).vendors == ["zte", "huawei"]
