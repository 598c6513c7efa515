"""Fuzzing (Hypothesis): no input crashes the analyser, the extractor, processing, feed and
sitemap parsing, JSON Lines or config loading, and each input gets a recorded verdict.

Small for CI: a fixed number of examples per property (env DEALWATCH_FUZZ_EXAMPLES, default
20), derandomized (the same cases every run) and without a deadline, so that a loaded machine
cannot fail it. `bench/fuzz.py` runs the same properties on more than 10,000 cases.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable
from functools import wraps
from typing import Any

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.config import WatchlistEntry
from models.records import Page
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.tag import watchlist_patterns
from pipeline.config import ConfigError, load_config
from pipeline.ingest.extract import ExtractionError, extract_article
from pipeline.jobs.process import process_pages
from pipeline.jsonl import MAX_DEPTH, JsonLineError, json_lines, parse_json_line
from pipeline.storage import Store
from pipeline.text import clean_text
from scrapers.spiders.documents import MalformedDocument, parse_atom, parse_rss, parse_sitemap

EXAMPLES = int(os.environ.get("DEALWATCH_FUZZ_EXAMPLES", "20"))
CASE_SECONDS: list[float] = []  # each case's time, for bench/fuzz.py


def fuzz(test: Callable[..., None]) -> Callable[..., None]:
    """A Hypothesis property run EXAMPLES times, the same cases every run, each case timed."""

    @wraps(test)
    def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            test(*args, **kwargs)
        finally:
            CASE_SECONDS.append(time.perf_counter() - started)

    return settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))(timed)


# --- what inputs are made of -----------------------------------------------------------------

WORDS = ["Huawei", "ZTE", "Hikvision", "Kenya", "Kenya's", "Kenyan", "U.S.", "Egypt", "ICT",
         "ministry", "Ministry of ICT", "government", "Telecom Egypt", "signed", "agreement",
         "MoU", "cloud", "data centre", "safe city", "5G", "fibre", "deal", "deals", "contract",
         "$28 million", "KSh 1.2bn", "2024", "70", "countries", "cancelled", "not", "banned",
         "will", "plans", "with", "and", "the", "a", "of", ".", ",", ";", "'s", "\"", "(", ")",
         "—", "-", "…", "!", "?", "\n", "\n\n", "\t", " ", "华为", "与", "肯尼亚", "签署"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u2066",
             "\u034f", "\ufe0f", "\U000e0041", "\u2028", "\u2029", "\u0085", "\x00", "\ud800"]
ANY_CHARACTER = st.characters(exclude_categories=())  # lone surrogates and controls included

words = st.one_of(st.sampled_from(WORDS), st.sampled_from(INVISIBLE),
                  st.text(ANY_CHARACTER, max_size=12))
texts = st.lists(words, max_size=80).map(" ".join) | st.lists(words, max_size=80).map("".join)


def _markup(parts: list[str]) -> str:
    return "".join(parts)


TAGS = ["<html>", "</html>", "<body>", "<article>", "</article>", "<p>", "</p>", "<div>", "</div>",
        "<h1>", "</h1>", "<title>", "</title>", "<script>", "</script>", "<style>", "<br>",
        "<!--", "-->", "<![CDATA[", "]]>", "<table><tr><td>", "</td></tr></table>", "<meta charset=\"",
        "<meta property=\"og:title\" content=\"", "<link rel=\"canonical\" href=\"", "\">",
        "&#xD800;", "&#0;", "&amp;", "&nbsp;", "&unknown;", "<", ">", "<p", "</", "<?xml?>",
        "<time datetime=\"", "<script type=\"application/ld+json\">{\"@type\": \"NewsArticle\", "
        "\"datePublished\": \"", "<a href=\"javascript:x\">", "http://[::1", "9999-99-99"]
html_texts = st.lists(st.one_of(st.sampled_from(TAGS), words), max_size=120).map(_markup)
bodies = st.one_of(html_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                   st.binary(max_size=400),
                   st.tuples(html_texts, st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"]))
                   .map(lambda t: t[0].encode(t[1], "replace")))

XML_PARTS = ["<?xml version=\"1.0\"?>", "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;\">]>",
             "<!DOCTYPE x SYSTEM \"file:///etc/passwd\">", "&a;", "&b;", "&xxe;", "<rss>", "</rss>",
             "<rss version=\"2.0\">", "<channel>", "</channel>", "<item>", "</item>", "<link>",
             "</link>", "<title>", "</title>", "<pubDate>", "</pubDate>", "<guid>", "</guid>",
             "<feed xmlns=\"http://www.w3.org/2005/Atom\">", "</feed>", "<entry>", "</entry>",
             "<link href=\"", "\"/>", "<updated>", "</updated>", "<published>", "</published>",
             "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">", "</urlset>",
             "<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
             "</sitemapindex>", "<sitemap>", "</sitemap>", "<url>", "</url>", "<loc>", "</loc>",
             "<lastmod>", "</lastmod>", "<news:news xmlns:news=\"http://www.google.com/schemas/sitemap-news/0.9\">",
             "<news:publication_date>", "</news:publication_date>", "<news:title>", "</news:title>",
             "</news:news>", "https://news.example/a", "/relative", "javascript:alert(1)",
             "http://[::1", "https://news.example:99999/x", "2026-01-19", "Mon, 19 Jan 2026 10:00:00 GMT",
             "not a date", "9999-99-99T99:99", "<![CDATA[", "]]>", "<!--", "-->"]
xml_bodies = st.one_of(
    st.lists(st.one_of(st.sampled_from(XML_PARTS), words), max_size=80)
    .map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300))

JSON_TEXT = st.text(st.one_of(ANY_CHARACTER.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF),
                              st.sampled_from(["\u2028", "\u2029", "\u0085", "\r", "\n", "\x0b"])),
                    max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXT, children, max_size=4),
    max_leaves=20)


# --- the analyser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


@given(text=texts, title=st.none() | texts)
@fuzz
def test_any_text_is_analysed_with_offsets_into_its_clean_text(analyzer, text: str, title: str | None) -> None:
    analysis = analyzer.analyze(text, title)
    clean = clean_text(text)
    for entity in analysis.entities:
        assert 0 <= entity.start < entity.end <= len(clean)
        assert clean[entity.start:entity.end] == entity.text
    for candidate in analysis.candidates:
        assert candidate.kind in ("deal", "aggregate") and 0 <= candidate.score <= 1
        json.dumps(candidate.to_json(with_signals=True))


def test_clean_text_leaves_no_format_character() -> None:
    every_cf = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
    assert clean_text(f"a{every_cf}b") == "ab"


# --- extraction and processing: every page gets a verdict --------------------------------------


@given(body=bodies)
@fuzz
def test_any_page_body_is_extracted_or_refused_with_a_reason(body: bytes) -> None:
    try:
        result = extract_article(body, "https://news.example/a", {"content-type": "text/html"})
    except ExtractionError as exc:
        assert str(exc)
        return
    assert result.status in ("article", "not_article", "blocked")
    if result.article is None:
        assert result.reason
    else:
        assert result.article.text == clean_text(result.article.text)
        assert result.article.text_hash


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("fuzz") / "dealwatch.db")
    yield store  # type: ignore[misc]
    store.close()


PAGE_NUMBERS = itertools.count()


@given(pages=st.lists(bodies, min_size=1, max_size=3))
@fuzz
def test_processing_any_pages_records_a_verdict_for_each(analyzer, fuzz_store: Store, pages: list[bytes]) -> None:
    urls = [f"https://news.example/{next(PAGE_NUMBERS)}" for _ in pages]
    for url, body in zip(urls, pages, strict=True):
        fuzz_store.pages.save_page(Page(url=url, source_id=None, status=200, body=body,
                                  headers={"content-type": "text/html"}))
    process_pages(fuzz_store, analyzer, max_text_chars=5_000)  # raises for nothing
    marks = ",".join("?" for _ in urls)
    verdicts = fuzz_store.db.execute(
        f"SELECT process_status, process_reason FROM pages WHERE url IN ({marks})", urls).fetchall()
    assert len(verdicts) == len(urls)
    for status, reason in verdicts:
        assert status in ("article", "not_article", "blocked", "duplicate", "failed")
        assert status in ("article", "duplicate") or reason


# --- feeds and sitemaps ------------------------------------------------------------------------


@given(body=xml_bodies)
@fuzz
def test_any_feed_or_sitemap_is_read_or_refused_with_a_reason(body: bytes) -> None:
    for parse in (parse_rss, parse_atom, parse_sitemap):
        try:
            listed = parse(body, "https://news.example/feed.xml")
        except MalformedDocument as exc:
            assert str(exc)
            continue
        for item in listed:
            assert isinstance(item.url, str) and item.role in ("article", "sitemap")
            assert "aaaaaaaaaa" not in (item.title or "")  # entities are never expanded


# --- JSON Lines ------------------------------------------------------------------------------


@given(records=st.lists(json_values, max_size=5), crlf=st.booleans())
@fuzz
def test_json_lines_give_back_every_record_whole(records: list[Any], crlf: bool) -> None:
    text = ("\r\n" if crlf else "\n").join(json.dumps(r, ensure_ascii=False) for r in records)
    assert [parse_json_line(line) for _, line in json_lines(text) if line.strip()] == records


@given(line=st.one_of(st.text(ANY_CHARACTER, max_size=60),
                      st.integers(1, 5_000).map(lambda n: "[" * n + "]" * n),
                      st.integers(1, 5_000).map(lambda n: '{"a":' * n + "1" + "}" * n)))
@fuzz
def test_any_json_line_is_read_or_refused_in_one_line(line: str) -> None:
    try:
        parse_json_line(line)
    except JsonLineError as exc:
        assert "\n" not in str(exc)
    if re.fullmatch(r"\[+\]+", line) and len(line) // 2 > MAX_DEPTH:
        with pytest.raises(JsonLineError, match="nested too deeply"):
            parse_json_line(line)


# --- config ----------------------------------------------------------------------------------

SETTINGS_KEYS = ["crawl.obey_robots", "crawl.allow_private_networks", "crawl.download_timeout",
                 "crawl.download_maxsize", "crawl.download_delay", "crawl.user_agent",
                 "crawl.max_run_seconds", "process.batch_size", "process.max_text_chars",
                 "process.use_model", "dedup.jaccard", "dedup.near_duplicates", "schedule.cron",
                 "schedule.timezone", "database.busy_timeout_ms", "crawl.no_such_key"]
TOML_VALUES = st.one_of(
    st.sampled_from(["true", "false", '"yes"', '"on"', '"1"', "1", "0", "-1", "inf", "-inf", "nan",
                     "1e400", "10485760", "0.5", '"auto"', '"UTC"', '"Mars/Base"', '"30 2 * * *"',
                     '"* * *"', "[]", "{}", "1979-05-27", '"caf\\u00e9"', "'''x'''"]),
    st.integers(1, 3_000).map(lambda n: "[" * n + "]" * n),
    st.text(ANY_CHARACTER, max_size=10).map(json.dumps))


@given(assignments=st.lists(st.tuples(st.sampled_from(SETTINGS_KEYS), TOML_VALUES), max_size=4),
       garbage=st.binary(max_size=20))
@fuzz
def test_any_settings_file_loads_or_fails_in_one_line(tmp_path_factory, assignments, garbage: bytes) -> None:
    directory = tmp_path_factory.mktemp("config")
    lines = [f"[{key.split('.')[0]}]\n{key.split('.')[1]} = {value}\n" for key, value in assignments]
    (directory / "settings.toml").write_bytes("".join(lines).encode("utf-8", "surrogatepass") + garbage)
    try:
        load_config(directory)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "settings.toml" in str(exc)


TOKEN_ATTRS = ["ORTH", "TEXT", "LOWER", "LEMMA", "POS", "IS_UPPER", "IS_TITLE", "LENGTH", "LIKE_NUM",
               "ENT_TYPE", "SHAPE", "OP", "NOT_AN_ATTR", "_"]
TOKEN_VALUES = st.one_of(
    st.text(max_size=6), st.integers(-2, 5), st.booleans(), st.none(),
    st.sampled_from(["?", "+", "*", "!", "{1,3}", "{,2}", "{x}"]),
    st.dictionaries(st.sampled_from(["IN", "NOT_IN", "REGEX", "FUZZY", ">=", "==", "IS_SUBSET", "BAD"]),
                    st.one_of(st.text(max_size=5), st.lists(st.text(max_size=4), max_size=3),
                              st.integers(0, 3), st.sampled_from(["(", "[a-", "a{2,1}", "(?P<x>a)"])),
                    max_size=2))
token_patterns = st.lists(st.dictionaries(st.sampled_from(TOKEN_ATTRS), TOKEN_VALUES, max_size=2),
                          max_size=3)


@given(patterns=st.lists(token_patterns, min_size=1, max_size=3), text=texts)
@fuzz
def test_a_watchlist_pattern_check_config_passes_never_fails_in_the_analyser(tmp_path_factory, patterns, text: str) -> None:
    directory = tmp_path_factory.mktemp("config")
    entry = {"id": "acme", "name": "Acme", "type": "vendor", "patterns": patterns}
    (directory / "watchlist").mkdir()
    (directory / "watchlist" / "extra.jsonl").write_text(json.dumps(entry) + "\n", encoding="utf-8")
    try:
        config = load_config(directory)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "extra.jsonl:1" in str(exc)
        return
    # passed: the analyser's EntityRuler (pipeline.analysis.tag.build_tagger) takes it and runs it
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH", "overwrite_ents": True})
    acme: list[WatchlistEntry] = [e for e in config.watchlist if e.id == "acme"]
    ruler.add_patterns(list(watchlist_patterns(acme, nlp)))  # type: ignore[attr-defined]
    nlp(clean_text(text))
