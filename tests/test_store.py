"""The store: migrations, WAL, idempotent writes, review statuses that survive re-analysis."""

from __future__ import annotations

import os
import sqlite3

import psycopg
import pytest

from models.records import Article, Candidate, Entity, Page
from pipeline.review.decisions import edit
from pipeline.storage import MIGRATIONS, QueueQuery, Store, StoreError
from pipeline.storage.queue import fts_terms

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both
DRIVER_ERRORS = (sqlite3.DatabaseError, psycopg.Error)


def _candidate(sentence: str = "Huawei signed a cloud deal with the Kenyan ICT ministry.",
               score: float = 0.9, **fields) -> Candidate:
    base = dict(kind="deal", vendor="huawei", vendors=["huawei"], country="KE",
                counterpart="ICT ministry", counterpart_type="ministry", deal_type="cloud",
                deal_types=["cloud"], stage="signed", value=None, currency=None, year=2026,
                score=score, sentence=sentence, start=0, end=len(sentence))
    base.update(fields)
    return Candidate(**base)


def _article(n: int = 1, text: str = "Huawei signed a cloud deal with the Kenyan ICT ministry.") -> Article:
    return Article(url=f"http://news.test/a{n}", canonical_url=f"https://news.test/a{n}", text=text,
                   text_hash=f"hash{n}", title=f"Story {n}")


def test_new_database_is_migrated_with_wal(db_path) -> None:
    with Store(db_path) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        versions = [r["version"] for r in store.db.query("SELECT version FROM schema_migrations")]
        assert versions == [v for v, _, _ in MIGRATIONS]
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for table in ("sources", "runs", "pages", "articles", "entities", "candidates", "reviews",
                      "deals", "deal_sources", "exports", "articles_fts"):
            assert table in store.db.table_names()
    # opening again applies nothing
    with Store(db_path) as store:
        assert store.migrate() == []


def test_unopenable_database_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open database"):
        Store(blocker / "sub" / "db.sqlite")


def test_not_a_database(tmp_path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_save_page_is_idempotent_and_requeues_changed_bodies(store_location) -> None:
    with Store(store_location) as store:
        page = Page(url="http://news.test/a1", source_id=None, status=200, body=b"<p>one</p>",
                    headers={"ETag": '"e1"', "Content-Type": "text/html"})
        first = store.pages.save_page(page)
        assert store.pages.save_page(page) == first
        assert store.counts()["pages"] == 1
        row = store.db.execute("SELECT etag, content_type FROM pages").fetchone()
        assert row == ('"e1"', "text/html")
        store.pages.mark_page(first, "article")
        store.pages.save_page(page)  # same body: stays processed
        assert store.pages.count_pages_to_process() == 0
        page.body = b"<p>two</p>"
        store.pages.save_page(page)  # changed body: processed again
        assert store.pages.count_pages_to_process() == 1
        assert [p.body for p in store.pages.pages_to_process()] == [b"<p>two</p>"]


def test_analysis_is_idempotent(store_location) -> None:
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        ents = [Entity("Huawei", "VENDOR", 0, 6, "huawei"), Entity("Kenyan", "COUNTRY", 36, 42, "KE")]
        for _ in range(3):
            with store.transaction():
                store.articles.save_analysis(article_id, ents, [_candidate()], "v1")
            assert store.articles.save_article(None, None, _article()) == article_id
        counts = store.counts()
        assert (counts["articles"], counts["entities"], counts["candidates"]) == (1, 2, 1)


def test_reviewed_candidates_survive_reanalysis(store_location) -> None:
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        store.articles.save_analysis(article_id, [], [_candidate(), _candidate("Another sentence.", 0.4)], "v1")
        confirmed = store.candidates.queue(QueueQuery(limit=None))[0]
        store.db.execute("UPDATE candidates SET status = 'confirmed' WHERE id = ?", [confirmed.id])
        # new rules find neither sentence: the pending one goes, the confirmed one stays
        outcome = store.articles.save_analysis(article_id, [], [], "v2")
        assert outcome["candidates_removed"] == 1
        left = store.candidates.queue(QueueQuery(status=None, limit=None))
        assert [(r.id, r.status) for r in left] == [(confirmed.id, "confirmed")]
        # found again with another score: the confirmed record is not rewritten
        store.articles.save_analysis(article_id, [], [_candidate(score=0.1)], "v3")
        assert store.candidates.queue(QueueQuery(status="confirmed"))[0].score == 0.9


def test_a_reviewers_edit_survives_reanalysis(store_location) -> None:
    """An edit leaves a candidate pending: analysing its article again must not put the
    detector's fields back over the reviewer's."""
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        store.articles.save_analysis(article_id, [], [_candidate()], "v1")
        cand = store.candidates.queue(QueueQuery(limit=None))[0]
        edit(store, cand.id, "ana", {"country": "TZ"}, version=cand.version)
        store.articles.save_analysis(article_id, [], [_candidate()], "v2")
        again = store.candidates.candidate(cand.id)
        assert again is not None and (again.status, again.country) == ("pending", "TZ")


def test_reviews_table_is_append_only(store_location) -> None:
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        store.articles.save_analysis(article_id, [], [_candidate()], "v1")
        store.db.execute("INSERT INTO reviews (candidate_id, reviewer, decided_at, decision) "
                         "VALUES (1, 'ana', '2026-01-01T00:00:00Z', 'confirm')")
        with pytest.raises(DRIVER_ERRORS, match="reviews is an append-only audit table"):
            store.db.execute("UPDATE reviews SET decision = 'reject'")
        with pytest.raises(DRIVER_ERRORS, match="reviews is an append-only audit table"):
            store.db.execute("DELETE FROM reviews")


def test_queue_orders_by_score_and_filters(store_location) -> None:
    with Store(store_location) as store:
        a1 = store.articles.save_article(None, None, _article(1))
        a2 = store.articles.save_article(None, None, _article(2, "Other text."))
        store.articles.save_analysis(a1, [], [_candidate(score=0.3)], "v1")
        store.articles.save_analysis(a2, [], [_candidate("Agg.", 0.8, kind="aggregate")], "v1")
        rows = store.candidates.queue()
        assert [r.score for r in rows] == [0.8, 0.3]
        assert rows[0].url == "http://news.test/a2"
        assert [r.kind for r in store.candidates.queue(QueueQuery(kind="deal"))] == ["deal"]
        assert store.candidates.queue(QueueQuery(status="confirmed")) == []


def test_article_full_text_search(store_location) -> None:
    with Store(store_location) as store:
        store.articles.save_article(None, None, _article(1, "Huawei builds data centres in Lusaka."))
        store.articles.save_article(None, None, _article(2, "Weather report for Tuesday."))
        dialect = store.database.dialect

        def search(text: str) -> list[str]:
            return [row["url"] for row in store.database.query(
                f"SELECT url FROM articles a WHERE {dialect.fts_match('a.id')} ORDER BY a.id",
                [dialect.fts_param(fts_terms(text))])]

        assert search("lusaka") == ["http://news.test/a1"]
        assert search("Data centre, LUSAKA!") == ["http://news.test/a1"]  # stemmed, case folded
        assert search("weather lusaka") == []  # every word


def test_runs_are_recorded(store_location) -> None:
    with Store(store_location) as store:
        run_id = store.runs.start_run("crawl", ["demo-rss"])
        store.runs.finish_run(run_id, "ok", {"crawl": {"demo-rss": {"requests": 3}}})
        run = store.runs.recent()[0]
        assert run.outcome == "ok" and run.finished_at
        assert run.counters["crawl"]["demo-rss"]["requests"] == 3
        assert run.sources == ["demo-rss"]


def test_every_write_is_durable_once_the_store_is_closed(store_location) -> None:
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        store.articles.save_analysis(article_id, [Entity("Huawei", "VENDOR", 0, 6, "huawei")], [_candidate()], "v1")
        store.pages.save_page(Page(url="http://news.test/a1", source_id=None, status=200, body=b"x"))
    with Store(store_location) as store:
        counts = store.counts()
    assert (counts["articles"], counts["entities"], counts["candidates"], counts["pages"]) == (1, 1, 1, 1)


def test_a_failed_transaction_leaves_nothing_half_written(store_location) -> None:
    with Store(store_location) as store:
        with pytest.raises(RuntimeError), store.transaction():
            article_id = store.articles.save_article(None, None, _article())
            store.articles.save_analysis(article_id, [], [_candidate()], "v1")
            raise RuntimeError("crash half way")
        assert store.counts()["articles"] == 0 and store.counts()["candidates"] == 0


def test_session_tokens_are_not_stored_readable(store_location) -> None:
    with Store(store_location) as store:
        user_id = store.accounts.add_user("ana", "scrypt$x")
        session = store.accounts.create_session(user_id, 3600)
        stored = store.db.execute("SELECT id FROM accounts.sessions").fetchone()[0]
        assert stored != session["id"] and session["id"] not in stored
        assert store.accounts.session(session["id"])["user_name"] == "ana"
        assert store.accounts.session(stored) is None  # reading the table gives no way in
        store.accounts.delete_session(session["id"])
        assert store.accounts.session(session["id"]) is None


def test_entities_on_one_span_come_in_one_order_on_both_engines(store_location) -> None:
    """Two entities over the same words (an ORG that is also a VENDOR): the article's page shows
    the later one's label, so their order is the store's, not the engine's."""
    with Store(store_location) as store:
        article_id = store.articles.save_article(None, None, _article())
        store.articles.save_analysis(article_id, [Entity("Huawei", "VENDOR", 0, 6, "huawei"),
                                                  Entity("Huawei", "ORG", 0, 6, None),
                                                  Entity("Huawei", "AGENCY", 0, 3, None)], [], "v1")
        assert [(e.label, e.end) for e in store.articles.entities_of(article_id)] == [
            ("AGENCY", 3), ("ORG", 6), ("VENDOR", 6)]


def test_unsupported_languages_list_the_unknown_first_among_equals_on_both_engines(store_location) -> None:
    """`status` lists them most first; among equal counts "unknown" (no language) comes first on
    PostgreSQL too, whose NULLs sort last."""
    with Store(store_location) as store:
        for n, code in ((1, "zh"), (2, None), (3, "ar"), (4, "ar")):
            article_id = store.articles.save_article(None, None, _article(n))
            store.articles.set_language_verdict(article_id, code, supported=False)
        assert list(store.articles.unsupported_languages().items()) == [
            ("ar", 2), ("unknown", 1), ("zh", 1)]


def test_a_database_that_cannot_be_migrated_is_closed_again(db_path) -> None:
    """A schema newer than this dealwatch is refused, and the refused file is not left open
    (a long-running process that retries would otherwise pile up connections)."""
    Store(db_path).close()
    plain = sqlite3.connect(db_path)
    plain.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', '2030-01-01')")
    plain.commit()
    plain.close()
    open_files = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")}
    for _ in range(3):
        with pytest.raises(StoreError, match="newer than this dealwatch"):
            Store(db_path)
    still_open = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")} - open_files
    assert not {path for path in still_open if path.startswith(str(db_path))}
