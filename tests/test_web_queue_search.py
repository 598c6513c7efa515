"""The queue's search box and its "n of N" without a browser: results, escaping, and the search
kept through paging and the candidate page's previous/next."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient
from webfixtures import PASSWORD, add_reviewers, seed_review_queue

from pipeline.config import load_config
from pipeline.review.web import create_app
from pipeline.storage import Store


@pytest.fixture
def web(db_path: Path) -> SimpleNamespace:
    with Store(db_path) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice")
    return SimpleNamespace(app=create_app(load_config(), db_path, secure_cookies=False), ids=ids)


@pytest.fixture
def client(web: SimpleNamespace) -> TestClient:
    client = TestClient(web.app, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"name": "alice", "password": PASSWORD,
                                "csrf_token": token.group(1)})
    return client


def shown(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]


def page_range(page: str) -> str:
    found = re.search(r'id="page-range">([^<]*)<', page)
    assert found, page
    return html.unescape(found.group(1)).split(" · ")[0]


def test_search_box_finds_the_article_and_keeps_what_was_typed(web, client) -> None:
    page = client.get("/queue", params={"q": "Ethio Telecom"})
    assert page.status_code == 200
    assert shown(page.text) == [web.ids["zte-ET"]]
    assert 'name="q" value="Ethio Telecom"' in page.text
    assert page_range(page.text) == "1–1 of 1"
    assert f'href="/candidate/{web.ids["zte-ET"]}?q=Ethio+Telecom"' in page.text


def test_hostile_search_text_is_escaped_and_breaks_nothing(web, client) -> None:
    for text in ('"><script>alert(1)</script>', 'NEAR("x" *', "-", "Србија ✓", "%_\\"):
        page = client.get("/queue", params={"q": text})
        assert page.status_code == 200, text
        assert "<script>alert(1)" not in page.text
    box = re.search(r'<input type="search" name="q" value="([^"]*)"',
                    client.get("/queue", params={"q": '"><script>'}).text)
    assert box and html.unescape(box.group(1)) == '"><script>'  # shown as typed, inert


def test_n_of_n_and_paging_keep_the_search(web, client, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.review.web.queue.PAGE_SIZE", 2)
    everything = client.get("/queue")
    assert page_range(everything.text) == "1–2 of 7"  # the syndicated story counts once
    first = client.get("/queue", params={"q": "disclosed"})
    assert page_range(first.text) == "1–2 of 5"
    assert shown(first.text) == [web.ids["zte-ET"], web.ids["hikvision-ZA"]]
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt and "q=disclosed" in nxt.group(1)
    second = client.get(html.unescape(nxt.group(1)))
    assert page_range(second.text) == "3–4 of 5"
    assert shown(second.text) == [web.ids["huawei-RS"], web.ids["dahua-PH"]]
    prev = re.search(r'href="([^"]+)" rel="prev"', second.text)
    assert prev and "q=disclosed" in prev.group(1)
    assert shown(client.get(html.unescape(prev.group(1))).text) == shown(first.text)
    third = client.get(html.unescape(re.search(r'href="([^"]+)" rel="next"',
                                               second.text).group(1)))
    assert page_range(third.text) == "5–5 of 5"
    assert 'rel="next"' not in third.text


def test_nothing_found_says_so(client) -> None:
    page = client.get("/queue", params={"q": "no such words anywhere"})
    assert shown(page.text) == [] and "0 of 0" in page.text and "Nothing here" in page.text


def test_the_candidate_page_steps_through_the_search(web, client) -> None:
    page = client.get(f"/candidate/{web.ids['hikvision-ZA']}", params={"q": "disclosed"})
    assert page.status_code == 200
    prev = re.search(r'href="([^"]+)" id="prev-link"', page.text)
    nxt = re.search(r'href="([^"]+)" id="next-link"', page.text)
    assert prev and html.unescape(prev.group(1)) == f"/candidate/{web.ids['zte-ET']}?q=disclosed"
    assert nxt and html.unescape(nxt.group(1)) == f"/candidate/{web.ids['huawei-RS']}?q=disclosed"
    last = client.get(f"/candidate/{web.ids['zte-BO']}", params={"q": "disclosed"})
    assert 'id="next-link"' not in last.text  # the end of the search, not of the whole queue


def test_the_queue_page_refuses_filter_values_that_name_nothing(client) -> None:
    """As the deals page and the CLI do: the parameter named and the valid values listed; a
    vendor's name and a country code in lower case read as what they name."""
    cases = {
        "vendor=Hauwei": ("vendor", "huawei"),
        "country=kenya": ("country", "KE"),
        "stage=agreed": ("stage", "signed"),
        "kind=deals": ("kind", "aggregate"),
        "status=done": ("status", "confirmed"),
        "source=nowhere": ("source", ""),
        "min_score=2": ("min_score", "0 to 1"),
        "to=2025-02-30": ("to", "YYYY-MM-DD"),
    }
    for query, (name, hint) in cases.items():
        page = client.get(f"/queue?{query}")
        assert page.status_code == 400, query
        assert f"{name}:" in page.text and hint in page.text, query
    by_name = client.get("/queue?vendor=Huawei&country=ke")
    assert by_name.status_code == 200
    assert shown(by_name.text) and shown(by_name.text) == shown(
        client.get("/queue?vendor=huawei&country=KE").text)
