"""Mistakes a user makes are errors that say what to do: a database path that is not there, a filter
value that matches nothing, a source refused for its private address, no source enabled; and
`dealwatch status` says what each run did, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sitefixtures import article_html, rss_feed, serve_dir, source_toml, write_config_dir, write_site

from models.records import Article, Candidate
from pipeline.cli import main
from pipeline.demo.server import SiteServer
from pipeline.ingest.crawl import PROJECT_ROOT
from pipeline.storage import Store


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEALWATCH_DB", "DEALWATCH_CONFIG", "DEALWATCH_REVIEWER"):
        monkeypatch.delenv(name, raising=False)


def dealwatch(*args: str, db: Path | None = None, config: Path | None = None,
              env: dict[str, str] | None = None):
    prefix = [*(["--db", str(db)] if db else []), *(["--config", str(config)] if config else [])]
    result = CliRunner().invoke(main, [*prefix, *args], env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


# --- a database that is not there ---------------------------------------------------------------

READING = [("queue",), ("review", "list"), ("review", "show", "1"), ("deals", "list"),
           ("deals", "show", "dw-000001"), ("export",), ("status",), ("status", "--check"),
           ("serve",), ("user", "list"), ("review", "--reviewer", "ann", "confirm", "1"),
           ("review", "--reviewer", "ann", "undo"), ("deals", "merge", "1", "2")]


@pytest.mark.parametrize("command", READING, ids=" ".join)
def test_a_read_command_refuses_a_database_that_is_not_there(tmp_path: Path,
                                                             command: tuple[str, ...]) -> None:
    typo = tmp_path / "data" / "dealwacth.db"
    result = dealwatch(*command, db=typo)
    assert result.exit_code == 1
    line = one_line(result.output)
    assert line.startswith(f"error: {typo}: no such database;")
    assert f"`dealwatch --db {typo} init` creates an empty one" in line
    assert f"`dealwatch --db {typo} run` creates and fills it" in line
    assert line.endswith("(from --db)")
    assert list(tmp_path.iterdir()) == []  # nothing made: no file, no folder, no accounts file


def test_the_message_says_where_the_path_came_from(tmp_path: Path, make_config) -> None:
    from_env = dealwatch("queue", env={"DEALWATCH_DB": str(tmp_path / "env.db")})
    assert from_env.exit_code == 1
    assert one_line(from_env.output) == (
        f"error: {tmp_path / 'env.db'}: no such database; `dealwatch init` creates an empty one, "
        "`dealwatch run` creates and fills it (from DEALWATCH_DB)")
    config = make_config({"settings.toml": f'[database]\npath = "{tmp_path / "set.db"}"\n'})
    from_settings = dealwatch("deals", "list", config=config)
    assert from_settings.exit_code == 1
    assert one_line(from_settings.output).endswith(
        f"(from database.path in {config / 'settings.toml'})")
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "set.db").exists()


def test_commands_that_write_create_the_database(tmp_path: Path) -> None:
    made = dealwatch("init", db=tmp_path / "a" / "new.db")
    assert made.exit_code == 0 and (tmp_path / "a" / "new.db").exists()
    assert dealwatch("migrate", db=tmp_path / "b.db").exit_code == 0
    assert (tmp_path / "b.db").exists()
    # and then the read commands read it
    assert "the queue is empty" in dealwatch("queue", db=tmp_path / "a" / "new.db").output
    assert "no runs yet" in dealwatch("status", db=tmp_path / "b.db").output


@pytest.mark.parametrize("command", [("queue",), ("init",)], ids=" ".join)
def test_a_directory_is_no_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = dealwatch(*command, db=tmp_path)
    assert result.exit_code == 1
    assert one_line(result.output) == (f"error: {tmp_path} is a directory, not a database file "
                                       f"(such as {tmp_path / 'dealwatch.db'}) (from --db)")
    assert list(tmp_path.iterdir()) == []


def test_a_path_below_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    for command in (("queue",), ("init",)):
        result = dealwatch(*command, db=tmp_path / "notes.txt" / "x.db")
        assert result.exit_code == 1
        assert one_line(result.output) == (f"error: {tmp_path / 'notes.txt' / 'x.db'}: cannot open "
                                           f"database: {tmp_path / 'notes.txt'} is a file, not a "
                                           "directory (from --db)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_database_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    Store(db).close()
    db.chmod(0)
    try:
        result = dealwatch("queue", db=db)
    finally:
        db.chmod(0o600)
    assert result.exit_code == 1
    assert one_line(result.output) == (f"error: {db}: cannot read the database: permission "
                                       "denied (from --db)")


# --- filter values --------------------------------------------------------------------------------


def _seed(db_path: Path) -> None:
    with Store(db_path) as store:
        for n, (vendor, country) in enumerate([("huawei", "KE"), ("zte", "NG"),
                                               ("china_mobile", "KE")]):
            text = f"Story {n}: a vendor signed a contract with a ministry."
            aid = store.articles.save_article(None, None, Article(
                url=f"http://news.test/{n}", canonical_url=f"https://news.test/{n}", text=text,
                text_hash=f"h{n}", title=f"Story {n}"))
            store.articles.save_analysis(aid, [], [Candidate(
                kind="deal", vendor=vendor, vendors=[vendor], country=country,
                counterpart="ministry", counterpart_type="ministry", deal_type="cloud",
                deal_types=["cloud"], stage="signed", value=None, currency=None, year=2026,
                score=0.9, sentence=text,
                start=0, end=len(text))], "test")


def _listed(db: Path, *filters: str) -> list[tuple[str, str]]:
    result = dealwatch("review", "list", "--json", *filters, db=db)
    assert result.exit_code == 0, result.output
    return [(c["vendor"], c["country"]) for c in json.loads(result.output)]


def test_country_filter_takes_alpha_2_in_any_case_and_names_the_code_of_a_country(
        db_path: Path) -> None:
    _seed(db_path)
    assert _listed(db_path, "--country", "ke") == _listed(db_path, "--country", "KE")
    assert sorted(_listed(db_path, "--country", "ke")) == [("china_mobile", "KE"), ("huawei", "KE")]
    for typed, said in [("kenya", "did you mean KE (Kenya)?"), ("KEN", "did you mean KE (Kenya)?"),
                        ("Atlantis", "(two letters, such as KE for Kenya)"),
                        ("XX", "(two letters, such as KE for Kenya)")]:
        result = dealwatch("review", "list", "--country", typed, db=db_path)
        assert result.exit_code == 2
        assert (f"Invalid value for '--country': {typed!r} is no ISO 3166 alpha-2 country code"
                in result.output)
        assert said in result.output


def test_vendor_filter_takes_an_id_in_any_case_or_a_name_and_lists_the_ids(db_path: Path) -> None:
    _seed(db_path)
    assert _listed(db_path, "--vendor", "Huawei") == [("huawei", "KE")]
    assert _listed(db_path, "--vendor", "HUAWEI") == [("huawei", "KE")]
    assert _listed(db_path, "--vendor", "China Mobile") == [("china_mobile", "KE")]
    result = dealwatch("review", "list", "--vendor", "acme", db=db_path)
    assert result.exit_code == 2
    assert "'acme' is no watchlist vendor; the vendor ids: " in result.output
    assert "huawei" in result.output and "zte" in result.output and "china_mobile" in result.output


@pytest.mark.parametrize(("command", "option", "valid"), [
    (("queue",), "--kind", "'deal', 'aggregate'"),
    (("queue",), "--status", "'pending', "),
    (("review", "list"), "--status", "'pending', "),
])
def test_a_choice_filter_lists_its_values(db_path: Path, command: tuple[str, ...], option: str,
                                          valid: str) -> None:
    _seed(db_path)
    result = dealwatch(*command, option, "bogus", db=db_path)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': 'bogus' is not one of {valid}" in result.output


# --- crawls: the private-network refusal, no enabled source ---------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    root = write_site(tmp_path_factory.mktemp("site"), {
        "robots.txt": "User-agent: *\nAllow: /\n",
        "feed.rss": rss_feed(["{{base}}/news/a.html", "{{base}}/news/b.html"]),
        "news/a.html": article_html("A first story"),
        "news/b.html": article_html("A second story"),
    })
    with serve_dir(root) as server:
        yield server


def test_a_private_network_refusal_names_the_setting_and_its_file(tmp_path: Path,
                                                                  site: SiteServer) -> None:
    config = write_config_dir(tmp_path / "config", [source_toml("local", "rss",
                                                                [f"{site.base_url}/feed.rss"])],
                              allow_private_networks=False)
    db = tmp_path / "db.sqlite"
    crawled = dealwatch("crawl", db=db, config=config)
    assert crawled.exit_code == 1
    hint = ("(private_network: a host on a private or local network; to crawl it, set "
            f"crawl.allow_private_networks = true in {config / 'settings.toml'})")
    assert ("needs attention: local: 1 feed/sitemap/listing fetch(es) failed: private_network x1 "
            + hint) in crawled.output
    status = dealwatch("status", db=db, config=config)
    assert f"  local: errors: run 1: 1 feed/sitemap/listing fetch(es) failed: private_network x1 {hint}" \
        in status.output.splitlines()


def test_no_enabled_sources_names_the_file_and_how_to_enable_one(tmp_path: Path,
                                                                 make_config) -> None:
    own = make_config({"sources.toml": source_toml("off", "rss", ["https://example.org/feed"],
                                                   enabled=False)}, name="own")
    result = dealwatch("crawl", db=tmp_path / "db.sqlite", config=own)
    assert result.exit_code == 1
    assert one_line(result.output) == (
        f"error: no enabled sources in {own}: to crawl a source, set enabled = true in its "
        f"[[source]] table (or name it with --source ID) in {own / 'sources.toml'}")
    bare = make_config({}, name="bare")  # no sources.toml: the shipped list, all disabled
    result = dealwatch("run", db=tmp_path / "db.sqlite", config=bare)
    assert result.exit_code == 1
    line = one_line(result.output)
    assert line.startswith(f"error: no enabled sources in {bare}, which has no sources.toml")
    assert str(PROJECT_ROOT / "config" / "sources.toml") in line
    assert line.endswith(f"set enabled = true on the sources to crawl in {bare / 'sources.toml'}")


# --- status: each flag once, the 304s counted -----------------------------------------------------


def test_status_says_each_problem_once_and_counts_304s(tmp_path: Path, site: SiteServer) -> None:
    config = write_config_dir(tmp_path / "config", [
        source_toml("local", "rss", [f"{site.base_url}/feed.rss"]),
        source_toml("gone", "rss", [f"{site.base_url}/no-such-feed.rss"])])
    db = tmp_path / "db.sqlite"
    # 1: the articles; 2: the feed again, whole (its validators were kept back while its links
    # were being fetched); 3: a conditional GET answered 304 Not Modified
    for _ in range(3):
        assert dealwatch("crawl", db=db, config=config).exit_code == 1  # "gone" fails each time
    assert dealwatch("process", "--model", "never", db=db, config=config).exit_code == 0
    text = dealwatch("status", db=db, config=config).output
    lines = text.splitlines()
    assert lines[0].startswith("run    4 process") and "ok       articles 2 (" in lines[0]
    assert "requests" not in lines[0] and "304s" not in lines[0]  # it did not crawl
    assert lines[1].startswith("run    3 crawl") and lines[1].endswith(
        "errors   requests 4, 304s 1, unchanged 0, new articles 0")
    assert "requests 4, 304s 0, unchanged 1, new articles 0" in lines[2]
    assert "  gone: errors: run 3: 1 feed/sitemap/listing fetch(es) failed: http_404 x1" in lines
    assert text.count("http_404") == 1
    runs = json.loads(dealwatch("status", "--json", db=db, config=config).output)["runs"]
    assert [(r["kind"], r["not_modified"], r["articles"]) for r in runs] == [
        ("process", None, 2), ("crawl", 1, None), ("crawl", 0, None), ("crawl", 0, None)]


def test_status_reads_a_crawl_the_crawler_recorded_itself(tmp_path: Path,
                                                          site: SiteServer) -> None:
    config = write_config_dir(tmp_path / "config", [
        source_toml("local", "rss", [f"{site.base_url}/feed.rss"]),
        source_toml("gone", "rss", [f"{site.base_url}/no-such-feed.rss"])])
    db = tmp_path / "db.sqlite"
    for _ in range(3):  # as cron might run it: no dealwatch around it, so it records its own run
        subprocess.run([sys.executable, "-m", "scrapers.run", "--db", str(db), "--config",
                        str(config)], cwd=PROJECT_ROOT, capture_output=True, check=False,
                       timeout=120)
    status = dealwatch("status", db=db, config=config)
    assert "run    3 crawl" in status.output and "requests 4, 304s 1," in status.output
    assert "  gone: errors: run 3: 1 feed/sitemap/listing fetch(es) failed: http_404 x1" \
        in status.output


@pytest.mark.parametrize("command", ["crawl", "run"])
def test_a_mistyped_source_is_refused_before_a_run_is_recorded(tmp_path: Path,
                                                               command: str) -> None:
    db = tmp_path / "runs.db"
    assert dealwatch("init", db=db).exit_code == 0
    result = dealwatch(command, "--source", "nope", db=db)
    assert result.exit_code == 1 and "nope" in result.output
    with Store(db) as store:
        assert store.runs.recent() == []
