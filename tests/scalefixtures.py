"""Generated news for the processing-worker tests and bench/process_workers.py: stories that each
hold one deal (one candidate), some carried by a second outlet as an edited copy (a near-duplicate)
or word for word under another URL (the same text), and pages of them to store."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from workerfixtures import rows

from models.records import Page
from pipeline.storage import Store
from pipeline.storage.queue import QueueQuery

VENDORS = ["Huawei", "ZTE", "Hikvision", "Inspur"]
COUNTRIES = [("Kenya", "NAIROBI"), ("Ghana", "ACCRA"), ("Zambia", "LUSAKA"),
             ("Senegal", "DAKAR"), ("Uganda", "KAMPALA"), ("Rwanda", "KIGALI")]
SERVICES = ["cloud", "data centre", "fibre network", "radio network", "surveillance"]
# Filler words with no deal, vendor, money or place in them: each story's own mix keeps stories
# apart (near-duplicate detection compares four-word shingles).
FILLER = tuple(" ".join([
    "garden river morning quiet painter bread orchard harbour lantern meadow pebble violin",
    "kettle window blanket ladder candle basket mirror pillow feather thimble puzzle carpet",
    "teapot saddle marble pigeon compass walnut chimney velvet lemon acorn button copper maple",
    "tulip parcel ribbon shovel trumpet wagon zipper"]).split(" "))


def story_text(n: int) -> tuple[str, str]:
    """Story n's headline and paragraphs: one deal sentence, then filler of its own."""
    rng = random.Random(n)
    vendor = VENDORS[n % len(VENDORS)]
    country, city = COUNTRIES[(n // len(VENDORS)) % len(COUNTRIES)]
    service = SERVICES[n % len(SERVICES)]
    title = f"{country} signs {service} deal with {vendor} (story {n})"
    deal = (f"{city} – {country}'s ministry of communications signed a {service} contract "
            f"worth ${10 + n % 90} million with {vendor}, officials said on Tuesday.")
    filler = [" ".join(rng.choice(FILLER) for _ in range(40)).capitalize() + "."
              for _ in range(3)]
    return title, "\n".join([deal, *filler])


def story_html(n: int, copy: str = "") -> str:
    """Story n as an article page; copy "edited" changes a closing line (a near-duplicate)."""
    title, text = story_text(n)
    paragraphs = text.split("\n")
    if copy == "edited":
        paragraphs.append("This report was first published by a partner outlet and edited.")
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head><body><article><h1>{title}</h1>{body}</article></body></html>")


def story_pages(stories: int, source_ids: tuple[str, ...] = ("wire",),
                edited_every: int = 0, same_every: int = 0) -> list[Page]:
    """A page for each story (in turn from each source), plus a second outlet's edited copy of
    every `edited_every`-th story and a word-for-word copy of every `same_every`-th, each under
    a URL of its own, the copies last (another source's)."""
    pages, copies = [], []
    for n in range(stories):
        source = source_ids[n % len(source_ids)]
        pages.append(_page(f"https://{source}.test/story/{n}", source, story_html(n)))
        other = source_ids[(n + 1) % len(source_ids)]
        if edited_every and n % edited_every == 0:
            copies.append(_page(f"https://{other}.test/partner/{n}", other,
                                story_html(n, "edited")))
        if same_every and n % same_every == 1:
            copies.append(_page(f"https://{other}.test/same/{n}", other, story_html(n)))
    return pages + copies


def _page(url: str, source_id: str, html: str) -> Page:
    return Page(url=url, source_id=source_id, status=200, body=html.encode(),
                headers={"content-type": "text/html; charset=utf-8"})


def store_pages(store: Store, pages: list[Page]) -> None:
    """Store these pages as a crawl would, their sources known to the database first."""
    now = "2026-01-01T00:00:00Z"
    for source_id in sorted({p.source_id for p in pages if p.source_id}):
        store.database.execute(
            "INSERT INTO sources (id, kind, name, urls, enabled, config, first_seen, updated_at) "
            "VALUES (?, 'rss', ?, '[]', 1, '{}', ?, ?) ON CONFLICT DO NOTHING",
            [source_id, source_id, now, now])
    with store.database.transaction(concurrent=True):
        for page in pages:
            store.pages.save_page(page)


# The worker tests' stories: STORIES from SOURCES (story_pages(STORIES, SOURCES, …)).
STORIES = 90
SOURCES = ("wire-a", "wire-b", "wire-c")


def assert_processed_once(url: str, pages: list[Any]) -> None:
    """What a user checks after the workers: every page processed once, into one outcome;
    every article stored once; every story one cluster with one candidate in the queue."""
    stored = rows(url, "SELECT url, process_status, process_reason, article_id FROM pages")
    assert Counter(r["url"] for r in stored) == Counter(p.url for p in pages)
    outcomes = Counter(r["process_status"] for r in stored)
    copies_same = sum(1 for p in pages if "/same/" in p.url)
    assert outcomes == Counter({"article": len(pages) - copies_same, "duplicate": copies_same})
    articles = rows(url, "SELECT id, url, cluster_id FROM articles")
    assert Counter(a["url"] for a in articles) == Counter(
        p.url for p in pages if "/same/" not in p.url)
    by_url = {a["url"]: a for a in articles}
    for page in pages:  # a copy is in its story's cluster, whichever worker took either
        story = page.url.rsplit("/", 1)[1]
        original = by_url[next(p.url for p in pages if p.url.endswith(f"/story/{story}"))]
        if "/partner/" in page.url:
            assert by_url[page.url]["cluster_id"] == original["cluster_id"], page.url
    assert len({a["cluster_id"] for a in articles}) == STORIES
    candidates = rows(url, "SELECT article_id, COUNT(*) AS n FROM candidates GROUP BY article_id")
    assert {c["article_id"]: c["n"] for c in candidates} == {a["id"]: 1 for a in articles}
    with Store(url) as store:  # the review queue shows each story once, with its copies
        queue = store.candidates.queue(QueueQuery(hidden=True))
    assert len(queue) == STORIES
    assert sum(len(entry.copies) for entry in queue) == len(pages)  # the same text too
