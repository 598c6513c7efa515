"""Long processing is not silent: each source's progress, live on a terminal (a real pty), a
plain line per source when its pages are done in cron, from records the processing loop sends."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from processfixtures import break_extraction
from sitefixtures import source_toml, write_config_dir
from test_crawl_progress import ANSI, in_cron, on_a_terminal

from models.records import Page, ProcessProgress
from pipeline.analysis.analyze import Analyzer
from pipeline.config import load_config
from pipeline.jobs.process import process_pages
from pipeline.jobs.runs import ProcessLines
from pipeline.storage import Store

COUNTRIES = ["Kenya", "Ghana", "Zambia", "Nigeria", "Senegal", "Rwanda"]


def _article(n: int) -> bytes:
    country = COUNTRIES[n % len(COUNTRIES)]
    paragraphs = "".join(
        f"<p>Report {n}, part {i}: {country}'s ICT ministry signed a cloud contract with Huawei "
        f"for its {['tax', 'health', 'school', 'border', 'court', 'land'][n % 6]} records, "
        f"officials said on Tuesday, in a story long enough to read as an article.</p>"
        for i in range(4))
    return (f"<html><head><title>Report {n}</title></head><body><article><h1>Report {n}</h1>"
            f"{paragraphs}</article></body></html>").encode()


NOT_AN_ARTICLE = b"<html><body><p>Subscribe to our newsletter.</p></body></html>"


def _pages() -> list[Page]:
    """Stored in this order, processed two to a batch: beta's pages are done in the third batch,
    alpha's in the fourth. alpha: 3 articles, 1 not an article, 1 copy of its first page's text
    at another URL; beta: 2 articles, 1 not an article."""
    bodies = [("alpha", 1, _article(1)), ("beta", 1, _article(2)),
              ("alpha", 2, _article(3)), ("beta", 2, _article(4)),
              ("alpha", 3, NOT_AN_ARTICLE), ("beta", 3, NOT_AN_ARTICLE),
              ("alpha", 4, _article(1)), ("alpha", 5, _article(5))]
    return [Page(url=f"https://news.test/{source}/{n}", source_id=source, status=200, body=body,
                 headers={"content-type": "text/html"}) for source, n, body in bodies]


def _config(directory: Path, feed_base: str = "http://127.0.0.1:9") -> Path:
    config = write_config_dir(directory, [source_toml(sid, "rss", [f"{feed_base}/{sid}.rss"])
                                          for sid in ("alpha", "beta")])
    with (config / "settings.toml").open("a", encoding="utf-8") as fh:
        fh.write("[process]\nbatch_size = 2\n")
    return config


def _fill(db_path: Path, config: Path, pages: list[Page]) -> None:
    with Store(db_path) as store:
        store.runs.sync_sources(load_config(config).sources)
        for page in pages:
            store.pages.save_page(page)


def _stored(db_path: Path) -> dict[str | None, dict[str, int]]:
    """Per source, what the database says processing did: pages by outcome, candidates."""
    out: dict[str | None, dict[str, int]] = {}
    with Store(db_path) as store:
        for source, status, n in store.db.execute(
                "SELECT source_id, process_status, COUNT(*) FROM pages GROUP BY 1, 2"):
            out.setdefault(source, {})[status] = n
        for source, n in store.db.execute(
                "SELECT a.source_id, COUNT(*) FROM candidates c JOIN articles a "
                "ON a.id = c.article_id GROUP BY 1"):
            out.setdefault(source, {})["candidates"] = n
    return out


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


def test_the_loop_tells_each_source_as_it_goes_and_the_totals_match_the_database(
        db_path: Path, tmp_path: Path, analyzer: Analyzer) -> None:
    unsourced = Page(url="https://elsewhere.test/1", source_id=None, status=200,
                     body=_article(6), headers={"content-type": "text/html"})
    _fill(db_path, _config(tmp_path / "config"), [*_pages(), unsourced])
    heard: list[ProcessProgress] = []
    with Store(db_path) as store:
        process_pages(store, analyzer, batch_size=2, on_progress=heard.append)
    # first every source with pages waiting, none done
    assert [(p.source, p.pages, p.done, p.finished) for p in heard[:3]] == [
        ("alpha", 5, 0, False), ("beta", 3, 0, False), (None, 1, 0, False)]
    finished = [p for p in heard if p.finished]
    assert [p.source for p in finished] == ["beta", "alpha", None]  # beta's pages were done first
    assert all(p.done <= p.pages for p in heard)
    stored = _stored(db_path)
    for p in finished:
        db = stored[p.source]
        assert (p.pages, p.done) == (sum(n for k, n in db.items() if k != "candidates"),) * 2
        assert (p.articles, p.not_article, p.duplicates, p.failed) == (
            db.get("article", 0), db.get("not_article", 0), db.get("duplicate", 0),
            db.get("failed", 0))
        assert p.candidates == p.candidates_new == db.get("candidates", 0) > 0
    alpha = finished[1]
    assert (alpha.articles, alpha.skipped, alpha.not_article, alpha.duplicates) == (3, 2, 1, 1)
    # a source is told after each batch that held its pages, with what it had got so far
    beta = [p.done for p in heard if p.source == "beta"]
    assert beta == [0, 1, 2, 3]


def test_a_display_that_breaks_does_not_stop_processing(
        db_path: Path, tmp_path: Path, analyzer: Analyzer) -> None:
    _fill(db_path, _config(tmp_path / "config"), _pages())
    told: list[ProcessProgress] = []

    def breaks(progress: ProcessProgress) -> None:
        told.append(progress)
        raise RuntimeError("the terminal went away")

    with Store(db_path) as store:
        report = process_pages(store, analyzer, batch_size=2, on_progress=breaks)
    assert len(told) == 1  # told once, then left alone
    assert report.counters["pages"] == len(_pages()) and not report.failures


def test_in_cron_process_prints_one_plain_line_per_source(
        run_cli, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path / "config")
    _fill(db_path, config, _pages())
    break_extraction(monkeypatch, "/beta/2")
    result = run_cli("--config", str(config), "process", "--model", "never")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    stored = _stored(db_path)
    per_source = {sid: [line for line in lines if line.startswith(f"process {sid} ")]
                  for sid in ("alpha", "beta")}
    assert all(len(found) == 1 for found in per_source.values()), result.stderr
    alpha_candidates, beta_candidates = stored["alpha"]["candidates"], stored["beta"]["candidates"]
    assert re.fullmatch(
        rf"process alpha done after \d+s: 5 pages, 3 articles, {alpha_candidates} "
        rf"candidates? \({alpha_candidates} new\), 2 skipped \(1 not an article, 1 exact "
        r"duplicate\), 0 failed", per_source["alpha"][0])
    assert re.fullmatch(
        rf"process beta done after \d+s: 3 pages, 1 article, {beta_candidates} "
        rf"candidates? \({beta_candidates} new\), 1 skipped \(1 not an article\), 1 failed "
        r"\(processing failed: RuntimeError\)", per_source["beta"][0])
    # beta's pages were done before alpha's; then the run's summary, as before
    summary = next(i for i, line in enumerate(lines) if line.startswith("processed "))
    assert lines[summary].startswith("processed 8 pages: 4 articles "), lines[summary]
    assert lines.index(per_source["beta"][0]) < lines.index(per_source["alpha"][0]) < summary
    assert stored["beta"]["failed"] == 1


def test_on_a_terminal_process_shows_a_live_row_per_source(tmp_path: Path) -> None:
    config = _config(tmp_path / "config")
    db = tmp_path / "db.sqlite"
    _fill(db, config, _pages())
    code, screen = on_a_terminal("--db", str(db), "--config", str(config), "process",
                                 "--model", "never")
    assert code == 0, screen
    assert "\x1b[2K" in screen and "\x1b[?25l" in screen  # lines rewritten, cursor hidden
    frames = [ANSI.sub("", frame) for frame in re.split(r"\r\n?|\n", screen)]
    stored = _stored(db)
    alpha = stored["alpha"]["candidates"]
    assert any(re.search(r"process alpha .* 5/5 pages .*3 articles, "
                         rf"{alpha} candidates? \({alpha} new\), 2 skipped", f) for f in frames)
    assert any(re.search(r"process beta .* 3/3 pages .*2 articles, .*1 skipped \(1 not an "
                         r"article\), 0 failed", f) for f in frames)
    assert any(re.search(r"processing .* 8/8 pages .*5 articles, ", f) for f in frames)
    # gone when the run ends (transient): what stays is the summary, as in a log
    text = ANSI.sub("", screen)
    assert "processed 8 pages: 5 articles" in text
    assert " done after " not in text and "finished after" not in text  # plain lines: logs


def test_in_cron_run_prints_the_crawl_then_a_line_per_source_processed(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the feeds fail at once
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = _config(tmp_path / "config", closed)
    db = tmp_path / "db.sqlite"
    _fill(db, config, _pages())  # stored by an earlier crawl, not processed yet
    result = in_cron("--db", str(db), "--config", str(config), "run", "--model", "never")
    assert result.returncode == 1  # the feeds need attention
    assert "\x1b" not in result.stderr
    lines = result.stderr.splitlines()
    crawled = [i for i, line in enumerate(lines) if re.match(r"crawl \w+ finished after ", line)]
    processed = [i for i, line in enumerate(lines)
                 if re.match(r"process \w+ done after \d+s: \d+ pages", line)]
    assert [lines[i].split()[1] for i in processed] == ["beta", "alpha"], result.stderr
    assert len(crawled) == 2 and max(crawled) < min(processed)
    assert "5 pages, 3 articles" in lines[processed[1]]


def test_plain_lines_say_when_a_source_is_done_and_how_the_run_goes_every_so_often() -> None:
    now = [0.0]
    said: list[str] = []
    lines = ProcessLines(said.append, every=60, clock=lambda: now[0])
    lines(ProcessProgress("a", pages=300))
    lines(ProcessProgress("b", pages=2))
    now[0] = 30
    lines(ProcessProgress("a", pages=300, done=100, articles=90))
    now[0] = 61
    lines(ProcessProgress("a", pages=300, done=200, articles=180, candidates=3,
                          candidates_new=2, not_article=15, blocked=4, failed=1,
                          failure_reason="cannot parse HTML: ValueError"))
    now[0] = 70
    lines(ProcessProgress("b", pages=2, done=2, duplicates=1, articles=1, finished=True))
    now[0] = 125
    lines(ProcessProgress("a", pages=300, done=300, articles=270, candidates=5,
                          candidates_new=4, not_article=22, blocked=5, failed=3,
                          failure_reason="analysis failed: ValueError", finished=True))
    assert said == [
        "processing going on after 1m01s: 200 of 302 pages (0 of 2 sources done), 180 articles, "
        "3 candidates (2 new), 19 skipped (15 not articles, 4 bot or consent walls), 1 failed",
        "process b done after 1m10s: 2 pages, 1 article, 0 candidates (0 new), 1 skipped "
        "(1 exact duplicate), 0 failed",
        "process a done after 2m05s: 300 pages, 270 articles, 5 candidates (4 new), "
        "27 skipped (22 not articles, 5 bot or consent walls), 3 failed (commonest: analysis "
        "failed: ValueError)",
    ]
