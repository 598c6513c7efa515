"""Review decisions: audited, versioned (no silent overwrites), decided once per story, undoable."""


from __future__ import annotations

import pytest

from models.records import Article, Candidate
from pipeline.review import decisions as review
from pipeline.review.decisions import ConflictError, ReviewError
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


def _seed(store: Store, n: int = 1, cluster: int | None = None, **fields) -> int:
    text = f"Story {n}: Kenya's ICT ministry signed a cloud contract with Huawei."
    article_id = store.articles.save_article(None, None, Article(
        url=f"http://news.test/{n}", canonical_url=f"https://news.test/{n}", text=text,
        text_hash=f"h{n}", title=f"Story {n}", published=f"2026-03-0{n}"))
    if cluster:
        store.articles.set_cluster(article_id, cluster)
    base = dict(kind="deal", vendor="huawei", vendors=["huawei"], country="KE",
                counterpart="ICT ministry", counterpart_type="ministry", deal_type="cloud",
                deal_types=["cloud"], stage="signed", value=None, currency=None, year=2026,
                score=0.9, sentence=text, start=0, end=len(text))
    base.update(fields)
    store.articles.save_analysis(article_id, [], [Candidate(**base)], "test")
    return int(store.db.execute("SELECT id FROM candidates WHERE article_id = ?",
                                [article_id]).fetchone()[0])


def test_confirm_is_audited_and_files_a_deal(store) -> None:
    cid = _seed(store)
    outcome = review.decide(store, cid, "confirm", "ana", version=1, note="checked the ministry site")
    row = store.candidates.candidate(cid)
    assert (row.status, row.reviewed_by, row.version) == ("confirmed", "ana", 2)
    assert outcome.deal_id and row.deal_id == outcome.deal_id
    deal = store.registry.deal(outcome.deal_id)
    assert (deal.vendor, deal.country, deal.stage) == ("huawei", "KE", "signed")
    assert deal.deal_id == f"dw-{outcome.deal_id:06d}"
    [audit] = review.history(store, cid)
    assert (audit.reviewer, audit.decision, audit.previous_status, audit.note) == (
        "ana", "confirm", "pending", "checked the ministry site")
    assert audit.decided_at


def test_second_reviewer_is_told_and_nothing_is_overwritten(store) -> None:
    cid = _seed(store)
    review.decide(store, cid, "reject", "ana", version=1, reason="not_a_deal")
    with pytest.raises(ConflictError, match=r"changed by ana .* \(now rejected\)"):
        review.decide(store, cid, "confirm", "bo", version=1)
    row = store.candidates.candidate(cid)
    assert (row.status, row.reviewed_by) == ("rejected", "ana")
    assert [r.reviewer for r in review.history(store, cid)] == ["ana"]
    assert store.counts()["deals"] == 0


def test_a_syndicated_story_is_decided_once(store) -> None:
    first = _seed(store, 1)
    cluster = store.candidates.candidate(first).cluster_id
    copy = _seed(store, 2, cluster=cluster)
    other = _seed(store, 3, country="UG")  # another story: untouched
    outcome = review.decide(store, first, "confirm", "ana")
    assert sorted(outcome.candidate_ids) == [first, copy]
    assert store.candidates.candidate(copy).status == "confirmed"
    assert store.candidates.candidate(other).status == "pending"
    sources = store.registry.deal_sources(outcome.deal_id)
    assert sorted(s.url for s in sources) == ["http://news.test/1", "http://news.test/2"]
    deal = store.registry.deal(outcome.deal_id)
    assert (deal.first_reported, deal.last_reported) == ("2026-03-01", "2026-03-02")


def test_edits_before_confirming_are_validated_and_recorded(store) -> None:
    cid = _seed(store)
    outcome = review.decide(store, cid, "confirm", "ana", edits={
        "country": "ug", "stage": "mou", "value": "75,000,000", "currency": "usd", "year": "2025",
        "deal_types": "cloud, data_centre"}, known_vendors={"huawei", "zte"})
    row = store.candidates.candidate(cid)
    assert (row.country, row.stage, row.value, row.currency, row.year) == (
        "UG", "mou", 75e6, "USD", 2025)
    assert row.deal_types == ["cloud", "data_centre"] and row.deal_type == "cloud"
    [audit] = review.history(store, cid)
    assert audit.edits["country"] == ["KE", "UG"]
    assert store.registry.deal(outcome.deal_id).country == "UG"


@pytest.mark.parametrize(("edits", "message"), [
    ({"stage": "almost"}, "stage: one of"),
    ({"country": "Kenya"}, "country: an ISO"),
    ({"year": "soon"}, "year: a whole number"),
    ({"vendor": "acme"}, "not a watchlist vendor"),
    ({"score": 1}, "not an editable field"),
    ({"value": "1e400"}, "value: an amount"),
    ({"value": "nan"}, "value: an amount"),
    ({"value": "-5"}, "value: an amount"),
    ({"currency": "=1+2"}, "currency: an ISO 4217"),
])
def test_bad_edits_are_refused(store, edits, message) -> None:
    cid = _seed(store)
    with pytest.raises(ReviewError, match=message):
        review.decide(store, cid, "confirm", "ana", edits=edits, known_vendors={"huawei"})
    assert store.candidates.candidate(cid).status == "pending"


def test_reject_needs_a_known_reason(store) -> None:
    cid = _seed(store)
    with pytest.raises(ReviewError, match="reason: one of not_a_deal"):
        review.decide(store, cid, "reject", "ana", reason="meh")
    review.decide(store, cid, "reject", "ana", reason="domestic")
    assert store.candidates.candidate(cid).reason == "domestic"


def test_undo_restores_the_candidate_and_the_registry(store) -> None:
    cid = _seed(store)
    outcome = review.decide(store, cid, "confirm", "ana", edits={"stage": "mou"})
    undone = review.undo(store, "ana")
    assert undone.candidate_ids == [cid]
    row = store.candidates.candidate(cid)
    assert (row.status, row.stage, row.deal_id) == ("pending", "signed", None)
    assert store.registry.deal(outcome.deal_id) is None, "the deal this confirmation created is gone"
    assert [r.decision for r in review.history(store, cid)] == ["confirm", "undo"]
    with pytest.raises(ReviewError, match="no decision to undo"):
        review.undo(store, "ana")


def test_undo_of_an_extension_keeps_the_deal(store) -> None:
    first, second = _seed(store, 1), _seed(store, 2, stage="completed")
    deal_id = review.decide(store, first, "confirm", "ana").deal_id
    assert review.decide(store, second, "confirm", "ana", deal_id=deal_id).deal_id == deal_id
    assert store.registry.deal(deal_id).stage == "completed"
    assert [s.stage for s in store.registry.deal_stages(deal_id)] == ["signed", "completed"]
    review.undo(store, "ana")
    deal = store.registry.deal(deal_id)
    assert deal is not None and deal.stage == "signed"
    assert [s.candidate_id for s in store.registry.deal_sources(deal_id)] == [first]


def test_undo_refuses_when_someone_decided_since(store) -> None:
    cid = _seed(store)
    review.decide(store, cid, "defer", "ana")
    review.decide(store, cid, "reject", "bo", reason="other")
    with pytest.raises(ConflictError, match="cannot be undone"):
        review.undo(store, "ana")


def test_bulk_reject_is_all_or_nothing(store) -> None:
    a, b = _seed(store, 1), _seed(store, 2, country="UG")
    outcomes = review.bulk_reject(store, [a, b], "ana", "not_a_deal")
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    c = _seed(store, 3, country="TZ")
    with pytest.raises(ReviewError):
        review.bulk_reject(store, [c, 99999], "ana", "not_a_deal")
    assert store.candidates.candidate(c).status == "pending"


def test_edit_without_deciding(store) -> None:
    cid = _seed(store)
    outcome = review.edit(store, cid, "ana", {"counterpart": "Ministry of ICT"}, version=1)
    row = store.candidates.candidate(cid)
    assert (row.status, row.counterpart, row.version) == ("pending", "Ministry of ICT", 2)
    assert outcome.versions == {cid: 2}
    with pytest.raises(ConflictError):
        review.edit(store, cid, "bo", {"counterpart": "x"}, version=1)


def test_reanalysis_does_not_touch_reviewed_candidates(store) -> None:
    cid = _seed(store)
    review.decide(store, cid, "confirm", "ana", edits={"stage": "mou"})
    row = store.candidates.candidate(cid)
    store.articles.save_analysis(row.article_id, [], [], "v2")  # new rules find nothing
    assert store.candidates.candidate(cid).stage == "mou"


def test_bulk_reject_checks_the_versions_the_reviewer_saw(store) -> None:
    a, b = _seed(store, 1), _seed(store, 2, country="UG")
    review.decide(store, b, "defer", "bo")  # b changed after the list was read
    with pytest.raises(ConflictError, match="changed by bo"):
        review.bulk_reject(store, [a, b], "ana", "not_a_deal", versions={a: 1, b: 1})
    assert store.candidates.candidate(a).status == "pending"


def test_undoing_a_rejection_of_the_last_source_files_it_again(store) -> None:
    cid = _seed(store)
    first = review.decide(store, cid, "confirm", "ana").deal_id
    review.decide(store, cid, "reject", "ana", reason="other")
    assert store.registry.deal(first) is None  # its only source left: the deal is withdrawn
    review.undo(store, "ana")
    row = store.candidates.candidate(cid)
    assert row.status == "confirmed" and row.deal_id is not None
    assert [s.candidate_id for s in store.registry.deal_sources(row.deal_id)] == [cid]


def test_deal_numbers_are_never_reused(store) -> None:
    a, b = _seed(store, 1), _seed(store, 2, country="UG", vendor="zte", vendors=["zte"])
    first = review.decide(store, a, "confirm", "ana").deal_id
    review.decide(store, a, "reject", "ana", reason="other")  # withdraws dw-000001
    second = review.decide(store, b, "confirm", "ana").deal_id
    assert second != first and store.registry.deal(second).deal_id != f"dw-{first:06d}"


def test_correcting_a_confirmed_source_reaches_its_deal_and_undo_takes_it_back(store) -> None:
    cid = _seed(store, stage="mou")
    deal_id = review.decide(store, cid, "confirm", "ana").deal_id
    version = store.registry.deal(deal_id).version
    review.edit(store, cid, "ana", {}, note="checked the gazette")
    assert store.registry.deal(deal_id).version == version, "a note changes nothing a registry sees"
    review.edit(store, cid, "ana", {"stage": "completed"})
    deal = store.registry.deal(deal_id)
    assert deal.stage == "completed" and deal.version > version
    assert [s.stage for s in store.registry.deal_stages(deal_id)] == ["completed"]
    review.undo(store, "ana")
    assert store.registry.deal(deal_id).stage == "mou"
    assert [s.deal_id for s in store.registry.deal_sources(deal_id)] == [deal_id]
    assert store.counts()["deals"] == 1, "undoing an edit files nothing anew"


def test_an_emptied_list_empties_its_single_form_too() -> None:
    """Unticking every type leaves no type: the first of none is none, not the old one."""
    from pipeline.review.decisions import clean_edits

    assert clean_edits({"deal_types": []}) == {"deal_types": [], "deal_type": None}
    assert clean_edits({"vendors": ["zte", "huawei"]}) == {"vendors": ["zte", "huawei"],
                                                          "vendor": "zte"}
