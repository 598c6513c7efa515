"""The processing stage keeps going: one page or text that breaks something costs only itself."""

from __future__ import annotations

import pytest
from processfixtures import break_extraction

from models.records import Page
from pipeline.analysis.analyze import Analyzer
from pipeline.config import load_config
from pipeline.jobs.process import process_pages
from pipeline.storage import Store


def _page(n: int, extra: str = "") -> Page:
    paragraphs = "".join(
        f"<p>NAIROBI – Story {n}: Kenya's ICT ministry signed a cloud contract with Huawei, "
        f"officials said on Tuesday, paragraph {i} of a report long enough to read as an "
        f"article.{extra}</p>" for i in range(4))
    return Page(url=f"https://news.test/{n}", source_id=None, status=200,
                body=f"<html><body><article><h1>Story {n}</h1>{paragraphs}</article></body></html>".encode(),
                headers={"content-type": "text/html"})


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


def test_a_page_that_breaks_extraction_is_recorded_and_the_batch_goes_on(db_path, analyzer, monkeypatch) -> None:
    break_extraction(monkeypatch, "/2")
    with Store(db_path) as store:
        for n in (1, 2, 3):
            store.pages.save_page(_page(n))
        report = process_pages(store, analyzer)
        statuses = dict(store.db.execute("SELECT url, process_status FROM pages").fetchall())
        reason = store.db.execute("SELECT process_reason FROM pages WHERE url LIKE '%/2'").fetchone()[0]
        assert statuses == {"https://news.test/1": "article", "https://news.test/2": "failed",
                            "https://news.test/3": "article"}
        assert "RuntimeError: unexpected markup" in reason
        assert report.counters["failed"] == 1 and store.counts()["candidates"] == 2
        assert process_pages(store, analyzer).counters["pages"] == 0  # nothing left stuck


def test_a_text_that_breaks_the_analyser_costs_only_its_article(db_path, analyzer) -> None:
    class Choosy:
        version = analyzer.version

        def analyze_many(self, passages, batch_size=64):
            for passage in passages:
                if "Story 2" in passage.text:
                    raise ValueError("cannot tag this")
                yield analyzer.analyze(passage.text, passage.title)

    with Store(db_path) as store:
        for n in (1, 2, 3):
            store.pages.save_page(_page(n))
        report = process_pages(store, Choosy())
        statuses = dict(store.db.execute("SELECT url, process_status FROM pages").fetchall())
        assert statuses["https://news.test/2"] == "failed"
        assert statuses["https://news.test/1"] == statuses["https://news.test/3"] == "article"
        assert store.counts()["candidates"] == 2
        assert report.failures and "ValueError: cannot tag this" in report.failures[0][1]
        # the counts say what is stored, not what a rolled-back attempt did
        assert report.counters["candidates"] == report.counters["candidates_new"] == 2
        assert report.counters["entities"] == store.counts()["entities"]


def test_the_headline_is_read_as_context_when_processing(db_path, analyzer) -> None:
    # the text never names the country; the page's headline does
    body = ("<html><head><title>Lesotho picks ZTE for police radio</title></head><body><article>"
            "<h1>Lesotho picks ZTE for police radio</h1>" + "".join(
                f"<p>The Mounted Police Service signed a contract with ZTE for a digital radio "
                f"network covering the districts, the police commissioner said, part {i} of a "
                f"report long enough to read as an article.</p>" for i in range(4))
            + "</article></body></html>")
    with Store(db_path) as store:
        store.pages.save_page(Page(url="https://news.test/ls", source_id=None, status=200,
                             body=body.encode(), headers={"content-type": "text/html"}))
        process_pages(store, analyzer)
        rows = store.db.execute("SELECT country, start, end, sentence FROM candidates").fetchall()
        text = store.db.execute("SELECT text FROM articles").fetchone()[0]
    assert rows and {r[0] for r in rows} == {"LS"}
    assert all(text[r[1]:r[2]] == r[3] for r in rows)  # offsets into the stored text
