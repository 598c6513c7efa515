"""Triangulation: a deal's sources counted, its independent outlets and official statements found,
and the confidence grade they give (README, "Triangulation and confidence")."""


from __future__ import annotations

import csv
import io
import json
import re

import pytest
from registryfixtures import kenya_and_uganda, kenya_cloud
from starlette.testclient import TestClient
from webfixtures import PASSWORD, add_reviewers

from models.registry import DealSource
from pipeline.config import ConfigError, load_config
from pipeline.review.decisions import decide
from pipeline.review.export import TRIANGULATION_FIELDS
from pipeline.review.registry import (
    RegistryError,
    confidence_grade,
    independent_sources,
    set_source_official,
    triangulate,
)
from pipeline.review.web import create_app
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


def _source(n: int, url: str, *, site: str | None = None, cluster: int | None = None,
            source_id: str | None = None, official: bool | None = None,
            published: str | None = "2025-01-10") -> DealSource:
    return DealSource(deal_id=1, candidate_id=n, url=url, site=site, cluster_id=cluster,
                      source_id=source_id, official=official, published=published)


@pytest.mark.parametrize(("independent", "official", "grade"), [
    (1, False, "C"),
    (2, False, "B"),
    (3, False, "A"),  # the boundary: three outlets
    (7, False, "A"),
    (1, True, "A"),  # one official statement is enough
    (0, False, "C"),
])
def test_grade_boundaries(independent: int, official: bool, grade: str) -> None:
    assert confidence_grade(independent, official) == grade


def test_syndicated_copies_and_an_outlets_repeats_count_once() -> None:
    sources = [
        _source(1, "https://www.nation.africa/kenya/a", site="Daily Nation", cluster=10),
        _source(2, "https://nation.africa/kenya/b", cluster=11),  # same outlet, another story
        _source(3, "https://syndic.example.co.ke/x", site="Syndic", cluster=10),  # a copy of 1
        _source(4, "https://the-star.co.ke/y", site="The Star", cluster=12),
    ]
    assert independent_sources(sources) == 2
    # the same site name under two domains is one outlet
    assert independent_sources([_source(1, "https://a.example/1", site="The Star"),
                                _source(2, "https://b.example/2", site="the  star")]) == 1
    assert independent_sources([]) == 0
    # a source with nothing to tell who published it counts on its own
    assert independent_sources([_source(1, ""), _source(2, "")]) == 2


def test_triangulate_weighs_sources_and_officials() -> None:
    sources = [
        _source(1, "https://nation.africa/a", published="2025-03-01T08:00:00Z"),
        _source(2, "https://the-star.co.ke/b", published="2025-01-10"),
        _source(3, "https://ict.go.ke/press", source_id="ke-ict", published=None),
    ]
    plain = triangulate(sources)
    assert (plain.sources, plain.independent_sources, plain.official_source) == (3, 3, False)
    assert (plain.first_reported, plain.last_reported, plain.confidence) == (
        "2025-01-10", "2025-03-01", "A")
    two = triangulate(sources[:2])
    assert (two.independent_sources, two.confidence) == (2, "B")
    # a source configured official makes one report enough
    assert triangulate(sources[2:], {"ke-ict"}).confidence == "A"
    assert triangulate(sources[2:]).confidence == "C"
    # a reviewer's word outranks sources.toml, both ways
    sources[2].official = False
    assert triangulate(sources[2:], {"ke-ict"}).official_source is False
    sources[0].official = True
    assert triangulate(sources[:1]).confidence == "A"


def test_a_deal_is_graded_from_its_stored_sources(store) -> None:
    ids = kenya_cloud(store)
    deal_id = decide(store, ids["mou"], "confirm", "ann").deal_id
    assert deal_id is not None
    t = triangulate(store.registry.deal_sources(deal_id))
    # the story and its syndicated copy (one cluster) are one report
    assert (t.sources, t.independent_sources, t.confidence) == (2, 1, "C")
    decide(store, ids["signed"], "confirm", "ann", deal_id=deal_id)
    decide(store, ids["completed"], "confirm", "ann", deal_id=deal_id)
    t = triangulate(store.registry.deal_sources(deal_id))
    # completed comes from the same outlet as the MoU: a repeat, not a new witness
    assert (t.sources, t.independent_sources, t.confidence) == (4, 2, "B")
    deal = store.registry.deal(deal_id)
    assert (t.first_reported, t.last_reported) == (deal.first_reported, deal.last_reported)

    version = deal.version
    set_source_official(store, deal_id, ids["signed"], True)
    t = triangulate(store.registry.deal_sources(deal_id))
    assert (t.official_source, t.confidence) == (True, "A")
    assert store.registry.deal(deal_id).version == version + 1  # exports and pushes see it
    set_source_official(store, deal_id, ids["signed"], None)
    assert triangulate(store.registry.deal_sources(deal_id)).confidence == "B"

    with pytest.raises(RegistryError, match="no source of"):
        set_source_official(store, deal_id, ids["uganda"], True)


def test_the_cli_lists_filters_shows_and_exports_the_grade(store_location, run_cli) -> None:
    with Store(store_location) as store:
        ids = kenya_and_uganda(store)

    listed = run_cli("deals", "list").output.splitlines()
    assert listed[1].split()[-5:-1] == ["B", "3", "2", "2025-01-10"]  # grade, sources, outlets
    assert listed[2].split()[-5:-1] == ["C", "1", "1", "2025-04-01"]
    only_b = run_cli("deals", "list", "--confidence", "b").output
    assert "dw-000001" in only_b and "dw-000002" not in only_b
    assert "no deal matches: confidence A" in run_cli("deals", "list", "--confidence", "A").output
    wrong = run_cli("deals", "list", "--confidence", "D")
    assert wrong.exit_code == 2 and "'D' is not one of 'a', 'b', 'c'" in wrong.output

    record = json.loads(run_cli("deals", "show", "dw-000001", "--json").output)
    assert {k: record[k] for k in TRIANGULATION_FIELDS} == {
        "source_count": 3, "independent_sources": 2, "official_source": False, "confidence": "B"}

    said = run_cli("deals", "source-official", "dw-000001", str(ids["signed"]))
    assert said.exit_code == 0 and "is official; confidence A" in said.output
    shown = run_cli("deals", "show", "dw-000001").output
    assert "confidence A: 3 source(s), 2 independent, an official statement" in shown
    assert f"#{ids['signed']}  official" in shown
    assert run_cli("deals", "source-official", "dw-000001", str(ids["signed"]), "--no"
                   ).output.endswith("confidence B\n")
    missing = run_cli("deals", "source-official", "dw-000001", str(ids["uganda"]))
    assert missing.exit_code == 1 and "no source of dw-000001" in missing.output

    rows = list(csv.DictReader(io.StringIO(run_cli("export", "--format", "csv").stdout)))
    header = run_cli("export", "--format", "csv").stdout.splitlines()[0].split(",")
    # added at the end: the columns before them keep their places (and so do these, before the
    # known deals' columns that came after them)
    known = header.index("external_id")
    assert header[known - 3:known] == ["independent_sources", "official_source", "confidence"]
    assert [(r["source_count"], r["independent_sources"], r["official_source"], r["confidence"])
            for r in rows] == [("3", "2", "no", "B"), ("1", "1", "no", "C")]
    lines = [json.loads(line) for line in run_cli("export", "--format", "jsonl").stdout.splitlines()]
    assert [r["confidence"] for r in lines] == ["B", "C"]


def _login(client: TestClient) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    assert client.post("/login", data={"name": "alice", "password": PASSWORD,
                                       "csrf_token": token.group(1)}).status_code == 303
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/deals").text)
    assert found
    return found.group(1)


def test_the_web_ui_shows_filters_and_marks_official_sources(db_path) -> None:
    with Store(db_path) as store:
        ids = kenya_and_uganda(store)
        add_reviewers(store, "alice")
    client = TestClient(create_app(load_config(), db_path, secure_cookies=False),
                        follow_redirects=False)
    token = _login(client)

    page = client.get("/deals").text
    assert "dw-000001" in page and "dw-000002" in page
    assert 'class="grade grade-b"' in page and 'class="grade grade-c"' in page
    only_c = client.get("/deals?confidence=C").text
    assert "dw-000002" in only_c and "/deal/dw-000001" not in only_c
    assert "No deal of confidence A" in client.get("/deals?confidence=a").text
    wrong = client.get("/deals?confidence=Z")
    assert wrong.status_code == 400 and "use one of A, B, C" in wrong.text

    deal_page = client.get("/deal/dw-000001").text
    assert "3 source(s), 2 independent, none official" in deal_page
    marked = client.post("/deal/dw-000001/official", data={
        "csrf_token": token, "source": str(ids["signed"]), "official": "yes"})
    assert marked.status_code == 303
    deal_page = client.get("/deal/dw-000001").text
    assert "graded A now" in deal_page  # the flash
    assert "an official statement among them" in deal_page
    assert 'value="unset"' in deal_page  # the reviewer's word can be taken back
    refused = client.post("/deal/dw-000001/official", data={
        "source": str(ids["signed"]), "official": "no"})
    assert refused.status_code == 403  # no form token
    bad = client.post("/deal/dw-000001/official", data={
        "csrf_token": token, "source": str(ids["signed"]), "official": "maybe"})
    assert bad.status_code == 400
    with Store(db_path) as store:
        weighed = triangulate(store.registry.deal_sources(1))  # dw-000001
    assert (weighed.official_source, weighed.confidence) == (True, "A")


def test_a_source_marked_official_in_sources_toml_grades_its_deals_a(store_location, make_config,
                                                                     run_cli) -> None:
    config = make_config({"sources.toml": '''
[[source]]
id = "ke-ict"
kind = "rss"
urls = ["https://ict.go.ke/feed.xml"]
official = true
'''})
    with Store(store_location) as store:
        ids = kenya_cloud(store)
        store.runs.sync_sources(load_config(config).sources)
        article = store.candidates.candidate(ids["uganda"]).article_id
        store.db.execute("UPDATE articles SET source_id = 'ke-ict' WHERE id = ?", [article])
        decide(store, ids["uganda"], "confirm", "ann")
    graded = json.loads(run_cli("--config", str(config), "deals", "show", "dw-000001",
                                "--json").output)
    assert (graded["official_source"], graded["confidence"]) == (True, "A")
    assert graded["sources"][0]["official"] is True
    # without that config, the same deal rests on one outlet
    assert json.loads(run_cli("deals", "show", "dw-000001", "--json").output)["confidence"] == "C"
    # the reviewer's word outranks the config
    run_cli("--config", str(config), "deals", "source-official", "dw-000001",
            str(ids["uganda"]), "--no")
    listed = run_cli("--config", str(config), "deals", "list", "--json").output
    assert json.loads(listed)[0]["confidence"] == "C"


def test_official_must_be_a_boolean_in_sources_toml(make_config) -> None:
    config = make_config({"sources.toml": '''
[[source]]
id = "ke-ict"
kind = "rss"
urls = ["https://ict.go.ke/feed.xml"]
official = "very"
'''})
    with pytest.raises(ConfigError, match="official"):
        load_config(config)
