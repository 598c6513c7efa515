"""The registry: confirmations gather into deals, stages keep their history, deals merge and split,
and undoing a confirmation takes its registry changes back."""

from __future__ import annotations

import pytest
from registryfixtures import kenya_cloud, story

from pipeline.review.decisions import ConflictError, decide, undo
from pipeline.review.export import registry_records
from pipeline.review.registry import RegistryError, merge_deals, split_deal, suggest_deals
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


def _source_ids(store: Store, deal_id: int) -> list[int]:
    return sorted(s.candidate_id for s in store.registry.deal_sources(deal_id))


def _one_deal(store: Store, ids: dict[str, int], *stories: str) -> int:
    """Confirm these stories, in this order, into one deal; its id."""
    deal_id = None
    for name in stories:
        deal_id = decide(store, ids[name], "confirm", "ann", deal_id=deal_id).deal_id
    assert deal_id is not None
    return deal_id


def test_first_confirmation_creates_a_deal_and_later_ones_extend_it(store) -> None:
    ids = kenya_cloud(store)
    first = decide(store, ids["mou"], "confirm", "ann")
    # the syndicated copy is decided with its story and is a source too
    assert first.candidate_ids == [ids["mou"], ids["copy"]]
    deal = store.registry.deal(first.deal_id)
    assert deal.deal_id == f"dw-{first.deal_id:06d}"
    assert (deal.vendor, deal.country, deal.counterpart) == ("huawei", "KE", "Ministry of ICT")
    assert (deal.first_reported, deal.last_reported) == ("2025-01-10", "2025-01-11")
    assert deal.confirmed_by == "ann"

    second = decide(store, ids["signed"], "confirm", "bob")
    assert second.deal_id == first.deal_id  # same vendor, country, counterpart and kind of project
    deal = store.registry.deal(first.deal_id)
    assert _source_ids(store, first.deal_id) == sorted([ids["mou"], ids["copy"], ids["signed"]])
    assert deal.last_reported == "2025-06-02"
    assert (deal.value, deal.currency) == (120_000_000.0, "USD")  # filled in, not overwritten
    assert deal.confirmed_by == "ann"

    other = decide(store, ids["uganda"], "confirm", "ann")
    assert other.deal_id != first.deal_id
    assert [r["deal_id"] for r in registry_records(store)] == ["dw-000001", "dw-000002"]


def test_a_different_project_of_the_same_vendor_starts_a_new_deal(store) -> None:
    ids = kenya_cloud(store)
    decide(store, ids["mou"], "confirm", "ann")
    fibre = story(store, "Huawei will lay 2,000 km of fibre for Kenya Power.", counterpart="Kenya Power",
                  counterpart_type="soe", deal_type="fibre_backbone", stage="signed")
    suggestions = suggest_deals(store, store.candidates.candidate(fibre))
    assert suggestions and suggestions[0].score < 0.75  # shown to the reviewer, not auto-filed
    outcome = decide(store, fibre, "confirm", "ann")
    assert outcome.deal_id != 1


def test_the_reviewer_chooses_the_deal_or_a_new_one(store) -> None:
    ids = kenya_cloud(store)
    kenya = decide(store, ids["mou"], "confirm", "ann").deal_id
    separate = decide(store, ids["signed"], "confirm", "ann", deal_id="new").deal_id
    assert separate != kenya
    filed = decide(store, ids["completed"], "confirm", "ann", deal_id=separate).deal_id
    assert filed == separate
    with pytest.raises(RegistryError, match="no deal dw-000099"):
        decide(store, ids["uganda"], "confirm", "ann", deal_id=99)
    assert store.candidates.candidate(ids["uganda"]).status == "pending"  # nothing half-done


def test_stage_history_mou_signed_completed_across_articles(store) -> None:
    ids = kenya_cloud(store)
    # confirmed out of order: the stage follows the latest report, not the latest decision
    deal_id = _one_deal(store, ids, "completed", "mou", "signed")
    assert store.registry.deal(deal_id).stage == "completed"
    assert [(s.stage, s.reported_at[:10]) for s in store.registry.deal_stages(deal_id)] == [
        ("mou", "2025-01-10"), ("signed", "2025-06-02"), ("completed", "2026-03-15")]
    record = registry_records(store)[0]
    assert [(h["stage"], h["reported"]) for h in record["stage_history"]] == [
        ("mou", "2025-01-10"), ("signed", "2025-06-02"), ("completed", "2026-03-15")]
    assert (record["first_reported"], record["last_reported"]) == ("2025-01-10", "2026-03-15")


def test_merge_moves_every_source_and_stage(store) -> None:
    ids = kenya_cloud(store)
    keep = decide(store, ids["mou"], "confirm", "ann").deal_id
    absorb = decide(store, ids["completed"], "confirm", "ann", deal_id="new").deal_id
    merge_deals(store, keep, absorb)
    assert _source_ids(store, keep) == sorted([ids["mou"], ids["copy"], ids["completed"]])
    assert store.registry.deal_sources(absorb) == []
    assert store.registry.deal(absorb).merged_into == keep
    assert store.registry.deal(keep).stage == "completed"
    assert store.candidates.candidate(ids["completed"]).deal_id == keep
    assert [r["deal_id"] for r in registry_records(store)] == [store.registry.deal(keep).deal_id]
    with pytest.raises(RegistryError):
        merge_deals(store, keep, absorb)  # already merged
    with pytest.raises(RegistryError):
        merge_deals(store, keep, keep)


def test_split_moves_some_sources_into_a_new_deal(store) -> None:
    ids = kenya_cloud(store)
    deal_id = _one_deal(store, ids, "mou", "completed")
    assert store.registry.deal(deal_id).stage == "completed"
    new_id = split_deal(store, deal_id, [ids["completed"]], "bob")
    assert _source_ids(store, new_id) == [ids["completed"]]
    assert _source_ids(store, deal_id) == sorted([ids["mou"], ids["copy"]])
    # each side's dates and stage follow its own sources now
    assert (store.registry.deal(deal_id).stage, store.registry.deal(deal_id).last_reported) == ("mou", "2025-01-11")
    assert (store.registry.deal(new_id).stage, store.registry.deal(new_id).first_reported) == ("completed", "2026-03-15")
    assert store.registry.deal(new_id).confirmed_by == "bob"
    with pytest.raises(RegistryError, match="not none or all"):
        split_deal(store, deal_id, [ids["mou"], ids["copy"]], "bob")
    with pytest.raises(RegistryError, match="not none or all"):
        split_deal(store, deal_id, [ids["uganda"]], "bob")


def test_undo_of_a_confirmation_removes_the_deal_it_created(store) -> None:
    ids = kenya_cloud(store)
    outcome = decide(store, ids["mou"], "confirm", "ann")
    assert store.registry.deal(outcome.deal_id) is not None
    undo(store, "ann")
    assert store.registry.deal(outcome.deal_id) is None
    assert store.registry.deals() == []
    for cid in (ids["mou"], ids["copy"]):
        row = store.candidates.candidate(cid)
        assert (row.status, row.deal_id) == ("pending", None)


def test_undo_of_a_confirmation_into_an_existing_deal_takes_back_only_its_source(store) -> None:
    ids = kenya_cloud(store)
    deal_id = decide(store, ids["mou"], "confirm", "ann").deal_id
    decide(store, ids["signed"], "confirm", "bob")
    assert store.registry.deal(deal_id).stage == "signed"
    undo(store, "bob")
    assert _source_ids(store, deal_id) == sorted([ids["mou"], ids["copy"]])
    assert store.registry.deal(deal_id).stage == "mou"
    assert store.registry.deal(deal_id).last_reported == "2025-01-11"


def test_two_reviewers_at_once_the_second_is_told(store) -> None:
    ids = kenya_cloud(store)
    seen = store.candidates.candidate(ids["signed"]).version
    decide(store, ids["signed"], "confirm", "ann", version=seen)
    with pytest.raises(ConflictError, match="ann"):
        decide(store, ids["signed"], "reject", "bob", version=seen, reason="not_a_deal")
    assert store.candidates.candidate(ids["signed"]).status == "confirmed"


def test_a_new_source_is_a_new_deal_version(store) -> None:
    ids = kenya_cloud(store)
    deal_id = _one_deal(store, ids, "mou", "completed")
    before = store.registry.deal(deal_id).version
    # a third report between the first and the last changes neither dates nor stage
    middle = story(store, "Huawei and the Ministry of ICT reviewed the Kenyan cloud MoU.",
                   published="2025-03-01", stage="mou")
    decide(store, middle, "confirm", "ann", deal_id=deal_id)
    assert len(store.registry.deal_sources(deal_id)) == 4
    assert store.registry.deal(deal_id).version > before


def test_rejecting_a_confirmed_candidate_takes_it_out_of_its_deal(store) -> None:
    ids = kenya_cloud(store)
    deal_id = _one_deal(store, ids, "mou", "signed")
    decide(store, ids["signed"], "reject", "bob", reason="not_a_deal")
    assert ids["signed"] not in _source_ids(store, deal_id)
    assert store.registry.deal(deal_id).stage == "mou"


def test_undo_after_a_split_leaves_no_empty_deal(store) -> None:
    ids = kenya_cloud(store)
    deal_id = _one_deal(store, ids, "mou", "completed")
    split_deal(store, deal_id, [ids["completed"]], "bob")
    undo(store, "ann")
    assert all(store.registry.deal_sources(d.id) for d in store.registry.deals())


def test_moving_no_named_sources_moves_none(store) -> None:
    """An empty list of sources to move is no sources, not every one of them."""
    ids = kenya_cloud(store)
    first = decide(store, ids["mou"], "confirm", "ann").deal_id
    second = decide(store, ids["completed"], "confirm", "ann", deal_id="new").deal_id
    before = _source_ids(store, first)
    assert store.registry.move_deal_sources(first, second, []) == 0
    assert _source_ids(store, first) == before and before
