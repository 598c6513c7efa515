"""Hostile input costs only itself (issue 12): a padded page, a bad line, a bad config value."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from models.records import Page
from pipeline.analysis.analyze import Analyzer
from pipeline.cli import main
from pipeline.config import ConfigError, load_config
from pipeline.ingest.extract import extract_article
from pipeline.jobs.process import process_pages
from pipeline.jsonl import json_lines, read_jsonl
from pipeline.storage import Store
from pipeline.text import clean_text

SENTENCE = "Kenya's ICT ministry signed a cloud deal with Huawei."
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff" * 4


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(), use_model="never")


@pytest.fixture
def run_cli(db_path, monkeypatch):
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)
    return lambda *args, input=None: CliRunner().invoke(main, ["--db", str(db_path), *args],
                                                        input=input)


def _hostile_page(sentences: int) -> Page:
    text = (SENTENCE + ZERO_WIDTH + " ") * sentences
    html = f"<html><body><article><h1>Deals</h1><p>{text}</p></article></body></html>"
    return Page(url="https://news.test/hostile", source_id=None, status=200, body=html.encode(),
                headers={"content-type": "text/html"})


# --- invisible characters ----------------------------------------------------------------------


def test_invisible_characters_neither_hide_a_vendor_nor_reach_the_store(analyzer) -> None:
    found = analyzer.analyze("Kenya's ICT ministry signed a cloud deal with Hua\u200bwei\u00ad.")
    assert "huawei" in {e.id for e in found.entities}
    assert found.candidates and found.candidates[0].vendor == "huawei"
    page = _hostile_page(20)
    article = extract_article(page.body, page.url).article
    assert article is not None
    assert not any(ch in article.text for ch in ZERO_WIDTH)
    assert article.text.count(SENTENCE) == 20
    # offsets index the stored (clean) text
    stored = analyzer.analyze(article.text)
    vendor = next(e for e in stored.entities if e.id == "huawei")
    assert article.text[vendor.start:vendor.end] == "Huawei"


def test_joiners_that_shape_a_script_are_kept() -> None:
    persian = "می\u200cخواهم"  # the ZWNJ is part of the word's spelling
    assert clean_text(persian) == persian
    assert clean_text("Hua\u200dwei \u202eZTE\u202c") == "Huawei ZTE"


# --- bounded work per article ------------------------------------------------------------------


def test_a_long_padded_page_alone_in_its_batch_is_analysed_in_part_and_recorded(db_path, analyzer) -> None:
    with Store(db_path) as store:
        store.pages.save_page(_hostile_page(400))  # ~22,000 visible characters, 28,000 with padding
        report = process_pages(store, analyzer, max_text_chars=5_000)
        status, reason = store.db.execute("SELECT process_status, process_reason FROM pages").fetchone()
        text = store.db.execute("SELECT text FROM articles").fetchone()[0]
        ends = [r[0] for r in store.db.execute("SELECT end FROM entities").fetchall()]
        assert status == "article"
        assert reason.startswith(f"too long: {len(text):,} characters, the first 5,000 analysed")
        assert report.counters["too_long"] == 1 and not report.failures
        assert text.count(SENTENCE) == 400 and len(text) < 22_000  # whole and clean: nothing lost
        assert ends and max(ends) <= 5_000
        assert store.counts()["candidates"] >= 1
        assert process_pages(store, analyzer, max_text_chars=5_000).counters["pages"] == 0


def test_the_analyser_reads_at_most_max_text_chars(make_config) -> None:
    config = load_config(make_config({"settings.toml": "[process]\nmax_text_chars = 2000\n"}))
    capped = Analyzer.from_config(config, use_model="never")
    analysis = capped.analyze((SENTENCE + " ") * 200)
    assert analysis.entities and max(e.end for e in analysis.entities) <= 2_000


@pytest.mark.parametrize("error", [MemoryError(), RecursionError("deep"), ValueError("bad text")])
def test_a_text_that_breaks_the_analyser_alone_in_its_batch_is_recorded_failed(db_path, analyzer, error) -> None:
    class Breaks:
        version = analyzer.version

        def analyze_many(self, texts, batch_size=64):
            for _ in texts:
                raise error
            yield  # pragma: no cover

    with Store(db_path) as store:
        store.pages.save_page(_hostile_page(10))
        report = process_pages(store, Breaks())  # must not raise
        status, reason = store.db.execute("SELECT process_status, process_reason FROM pages").fetchone()
        assert status == "failed"
        assert reason.startswith(f"analysis failed: {type(error).__name__}")
        assert report.counters["failed"] == 1 and len(report.failures) == 1
        # the next run does not trip on it again
        assert process_pages(store, analyzer).counters["pages"] == 0


# --- JSON Lines --------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_json_lines_split_on_newline_only(run_cli, tmp_path, separator) -> None:
    records = [{"id": 1, "text": f"Kenya{separator}signed with Huawei"}, {"id": 2, "text": SENTENCE}]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    assert [line for _, line in json_lines(text) if line] == [
        json.dumps(r, ensure_ascii=False) for r in records]
    path = tmp_path / "passages.jsonl"
    path.write_text(text, encoding="utf-8")
    assert [value for _, value in read_jsonl(path, ConfigError)] == records
    result = run_cli("analyze", "--jsonl", "-", "--model", "never", input=text)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.strip().split("\n")] == [1, 2]


def test_deeply_nested_json_is_refused_per_line_and_the_rest_go_on(run_cli) -> None:
    lines = ["[" * 100_000 + "]" * 100_000, json.dumps({"id": "ok", "text": SENTENCE}),
             '{"id": ' + "[" * 70 + "]" * 70 + ', "text": "x"}']
    result = run_cli("analyze", "--jsonl", "-", "--model", "never", input="\n".join(lines))
    assert result.exit_code == 1 and "Traceback" not in result.output
    outputs = [json.loads(line) for line in result.stdout.strip().split("\n")]
    assert [o["id"] for o in outputs] == [1, "ok", 3]
    assert outputs[1]["candidates"]
    assert "-:1: skipped: JSON nested too deeply" in result.stderr
    assert "-:3: skipped: JSON nested too deeply" in result.stderr


def test_deep_nesting_in_a_watchlist_or_gold_file_is_one_line(run_cli, make_config, tmp_path) -> None:
    directory = make_config({"watchlist/extra.jsonl": "[" * 100_000 + "]" * 100_000 + "\n"})
    result = run_cli("--config", str(directory), "check-config")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == f"error: {directory}/watchlist/extra.jsonl:1: JSON nested too deeply (more than 64 levels)"
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "a", "text": "x", "is_deal": "no"}\n' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "\n", encoding="utf-8")
    result = run_cli("eval", str(gold), "--model", "never")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "gold.jsonl:2: JSON nested too deeply" in result.stderr


# --- config errors are one line naming file and field -----------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("settings.toml", b'[crawl]\nuser_agent = "caf\xe9"\n',
         "settings.toml: line 2: user_agent: not UTF-8 (byte 0xe9 at column 18)"),
        ("settings.toml", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
         "settings.toml: not valid TOML: arrays or tables nested too deeply"),
        ("settings.toml", b'[crawl]\nobey_robots = "yes"\n', "settings.toml: crawl.obey_robots: Input should be a valid boolean"),
        ("settings.toml", b'[crawl]\nallow_private_networks = "on"\n', "crawl.allow_private_networks: Input should be a valid boolean"),
        ("settings.toml", b"[crawl]\nautothrottle = 1\n", "settings.toml: crawl.autothrottle: Input should be a valid boolean"),
        ("settings.toml", b'[dedup]\nnear_duplicates = "1"\n', "settings.toml: dedup.near_duplicates: Input should be a valid boolean"),
        ("sources.toml", b'[[source]]\nid = "a"\nkind = "rss"\nurls = ["http://x.org/"]\nenabled = "yes"\n',
         "sources.toml: source[0].enabled: Input should be a valid boolean"),
        ("settings.toml", b"[crawl]\ndownload_timeout = inf\n", "settings.toml: crawl.download_timeout: Input should be a finite number"),
        ("settings.toml", b"[crawl]\ndownload_timeout = nan\n", "settings.toml: crawl.download_timeout: Input should be a finite number"),
        ("settings.toml", b"[crawl]\ndownload_timeout = 0\n", "settings.toml: crawl.download_timeout: Input should be greater than 0"),
        ("settings.toml", b"[crawl]\nmax_run_seconds = inf\n", "settings.toml: crawl.max_run_seconds: Input should be a finite number"),
        ("settings.toml", b"[crawl]\ndownload_maxsize = 0\n",
         "settings.toml: crawl.download_maxsize: Value error, 0 would mean no size limit to Scrapy"),
        ("settings.toml", b"[process]\nmax_text_chars = 10\n", "settings.toml: process.max_text_chars: Input should be greater than or equal to 1000"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor", "private": "yes"}\n',
         "vendors.jsonl:1: private: Input should be a valid boolean"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor", "patterns": [[{"NOT_AN_ATTR": "x"}]]}\n',
         "vendors.jsonl:1: acme: patterns[0]: [pattern -> 0 -> NOT_AN_ATTR] Extra inputs are not permitted"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor", "patterns": [[{"LOWER": "acme"}], [{"TEXT": {"REGEX": "(ac"}}]]}\n',
         "vendors.jsonl:1: acme: patterns[1]: missing ), unterminated subpattern"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor", "patterns": [[{"LOWER": "acme"}, {"LEMMA": "network"}]]}\n',
         "vendors.jsonl:1: acme: patterns[0]: token 1: LEMMA is not set when this pattern is matched"),
        ("patterns/en/extra.jsonl", b'{"label": "approval", "pattern": [{"POS": "VERB"}, {"ENT_TYPE": "VENDOR"}]}\n',
         "extra.jsonl:1: pattern: token 0: POS is not set when this pattern is matched"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor", "patterns": [[]]}\n',
         "vendors.jsonl:1: acme: patterns[0]: a non-empty list of token objects is required"),
        ("watchlist/vendors.jsonl", b'{"id": "acme", "name": "Acme", "type": "vendor"}\n{"id": "caf\xe9"}\n',
         "vendors.jsonl: cannot read: 'utf-8' codec can't decode byte 0xe9"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_file_and_field(run_cli, make_config, filename, content, expected) -> None:
    directory = make_config()
    (directory / filename).parent.mkdir(parents=True, exist_ok=True)
    (directory / filename).write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(directory) in str(info.value)
    result = run_cli("--config", str(directory), "check-config")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_what_check_config_passes_the_analyser_builds_and_runs(make_config) -> None:
    # unusual but valid patterns: what spaCy accepts at check-config time it must accept later
    patterns = [[{"LOWER": {"IN": ["acme", "akme"]}}, {"TEXT": {"REGEX": "^(Corp|Inc)\\.?$"}, "OP": "?"}],
                [{"LOWER": {"FUZZY": "acmesoft"}}], [{"LENGTH": {">=": 3}, "IS_UPPER": True}, {"ORTH": "Telecom"}],
                [{"LOWER": "acme"}, {"OP": "{1,3}"}, {"LOWER": "networks"}]]
    entry = {"id": "acme", "name": "Acme", "type": "vendor", "country": "CN", "patterns": patterns}
    directory = make_config({"watchlist/extra.jsonl": json.dumps(entry) + "\n"})
    config = load_config(directory)
    analysis = Analyzer.from_config(config, use_model="never").analyze(
        "Kenya's ICT ministry signed a cloud deal with akme Corp. and ACMESOFT and XYZ Telecom.")
    assert {e.text for e in analysis.entities if e.id == "acme"} >= {"akme Corp.", "ACMESOFT"}
