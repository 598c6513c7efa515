"""Syndication: one story on several sites is one cluster, across runs; unrelated stories never merge."""

from __future__ import annotations

import json
import random
import re

import pytest

from models.config import DedupSettings
from models.records import Page
from pipeline.analysis.analyze import Analyzer
from pipeline.config import load_config
from pipeline.demo import DEMO_SITE_DIR
from pipeline.ingest.dedup import NearDuplicateIndex, resemblance, signature
from pipeline.ingest.extract import extract_article
from pipeline.jobs.process import process_pages
from pipeline.storage import QueueQuery, Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both

EXPECTED = json.loads((DEMO_SITE_DIR / "_expected.json").read_text(encoding="utf-8"))
STORIES = [e for e in EXPECTED if e["kind"] != "not_article"]
PAIR = next((e["path"], e["syndicated_with"]) for e in EXPECTED if e.get("syndicated_with"))


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


def _html(path: str) -> bytes:
    return (DEMO_SITE_DIR / path.lstrip("/")).read_bytes()


def _text(path: str) -> str:
    result = extract_article(_html(path), "http://demo.test" + path)
    assert result.article is not None, path
    return result.article.text


def _store_page(store: Store, path: str, source: str | None = None) -> None:
    store.pages.save_page(Page(url="http://demo.test" + path, source_id=source, status=200,
                         body=_html(path), headers={"content-type": "text/html; charset=utf-8"}))


def test_syndicated_copies_resemble_each_other_and_nothing_else() -> None:
    texts = {e["path"]: _text(e["path"]) for e in STORIES}
    sigs = {path: signature(text) for path, text in texts.items()}
    a, b = PAIR
    jaccard, containment = resemblance(sigs[a], sigs[b])
    assert jaccard >= 0.5 and containment >= 0.6
    unrelated = [resemblance(sigs[x], sigs[y])[0] for x in sigs for y in sigs
                 if x < y and {x, y} != {a, b}]
    assert max(unrelated) < 0.15


def _edited(text: str, rng: random.Random) -> str:
    """A syndication partner's copy: one paragraph dropped, a few words changed, a new ending."""
    paragraphs = text.split("\n")
    if len(paragraphs) > 4:
        del paragraphs[rng.randrange(1, len(paragraphs) - 1)]
    words = "\n".join(paragraphs).split(" ")
    for i in rng.sample(range(len(words)), k=max(1, len(words) // 40)):
        words[i] = words[i].upper()
    return " ".join(words) + "\nThis story was first published by a partner site."


def test_index_clusters_edited_copies_and_keeps_stories_apart() -> None:
    rng = random.Random(7)
    index = NearDuplicateIndex()
    originals = {}
    for n, e in enumerate(STORIES, 1):
        originals[n] = _text(e["path"])
        cluster_id, _ = index.assign(n, signature(originals[n]))
        if e["path"] not in PAIR:
            assert cluster_id == n, "a new story starts its own cluster"
    for n, text in originals.items():
        copy_id = 1000 + n
        cluster_id, _ = index.assign(copy_id, signature(_edited(text, rng)))
        # the syndicated pair are one story on the demo site already
        assert index.cluster_of[n] == cluster_id, (STORIES[n - 1]["path"], cluster_id)
    clusters = {}
    for article_id, cluster_id in index.cluster_of.items():
        clusters.setdefault(cluster_id, set()).add(article_id % 1000)
    pair_ids = {n for n, e in enumerate(STORIES, 1) if e["path"] in PAIR}
    for members in clusters.values():
        assert len(members) == 1 or members == pair_ids, members


def test_truncated_copy_is_caught_by_containment() -> None:
    text = _text(PAIR[0])
    half = " ".join(text.split(" ")[: len(text.split(" ")) // 2])
    index = NearDuplicateIndex()
    index.assign(1, signature(text))
    assert index.assign(2, signature(half))[0] == 1


def test_clusters_merge_when_a_copy_bridges_them() -> None:
    index = NearDuplicateIndex()
    text = _text(PAIR[0])
    words = text.split(" ")
    first, second = " ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])
    assert index.assign(1, signature(first))[0] == 1
    assert index.assign(2, signature(second))[0] == 2
    cluster_id, merged = index.assign(3, signature(text))
    assert cluster_id == 1 and merged == [2]
    assert index.cluster_of == {1: 1, 2: 1, 3: 1}


def _cluster_ids(store: Store) -> dict[str, int]:
    return {re.sub(r"^https?://[^/]+", "", r["url"]): r["cluster_id"]
            for r in store.db.query("SELECT url, cluster_id FROM articles")}


def test_syndicated_story_is_one_queue_entry_with_both_copies(store_location, analyzer) -> None:
    with Store(store_location) as store:
        for e in STORIES:
            _store_page(store, e["path"])
        report = process_pages(store, analyzer)
        assert report.counters["near_duplicates"] == 1
        clusters = _cluster_ids(store)
        assert clusters[PAIR[0]] == clusters[PAIR[1]]
        assert len(set(clusters.values())) == len(STORIES) - 1
        rows = [r for r in store.candidates.queue(QueueQuery(limit=None)) if r.country == "KE"
                and "huawei" in r.vendors and r.kind == "deal"]
        assert len(rows) == 1
        copies = {re.sub(r"^https?://[^/]+", "", c.url) for c in rows[0].copies}
        assert copies == set(PAIR)
        # both copies' candidates are stored; the queue shows them as one
        assert store.db.execute("SELECT COUNT(*) FROM candidates WHERE country = 'KE' "
                                "AND vendor = 'huawei' AND kind = 'deal'").fetchone()[0] == 2


def test_clustering_works_across_runs(store_location, analyzer) -> None:
    a, b = PAIR
    with Store(store_location) as store:
        _store_page(store, a)
        process_pages(store, analyzer)
    with Store(store_location) as store:  # a later run, a new process: the index comes from the store
        _store_page(store, b)
        report = process_pages(store, analyzer)
        assert report.counters["near_duplicates"] == 1
        clusters = _cluster_ids(store)
        assert clusters[a] == clusters[b]


def test_near_duplicates_can_be_switched_off(store_location, analyzer) -> None:
    with Store(store_location) as store:
        for path in PAIR:
            _store_page(store, path)
        process_pages(store, analyzer, dedup=DedupSettings(near_duplicates=False))
        clusters = _cluster_ids(store)
        assert clusters[PAIR[0]] != clusters[PAIR[1]]
