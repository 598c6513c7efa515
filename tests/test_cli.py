"""The command line: what each command prints and its exit codes (0 ok, 1 handled, 2 usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.records import Article, Candidate
from pipeline.cli import main
from pipeline.storage import Store


@pytest.fixture
def run_cli(db_path, monkeypatch):
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)

    def invoke(*args: str, input: str | None = None, db: Path | None = db_path):
        prefix = ["--db", str(db)] if db else []
        return CliRunner().invoke(main, [*prefix, *args], input=input)

    return invoke


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_init_creates_database_and_copies_config(run_cli, db_path, tmp_path) -> None:
    result = run_cli("init", "--write-config", str(tmp_path / "myconfig"))
    assert result.exit_code == 0, result.output
    assert db_path.exists()
    assert (tmp_path / "myconfig" / "sources.toml").exists()
    assert (tmp_path / "myconfig" / "watchlist").is_dir()
    # the copy is a valid config dir
    result = run_cli("--config", str(tmp_path / "myconfig"), "check-config")
    assert result.exit_code == 0, result.output
    # refusing to overwrite a non-empty directory is a handled error
    result = run_cli("init", "--write-config", str(tmp_path / "myconfig"))
    assert result.exit_code == 1
    assert "not empty" in result.output


def test_migrate_reports_version(run_cli) -> None:
    first = run_cli("migrate")
    assert first.exit_code == 0 and "applied 001 initial schema" in first.output
    second = run_cli("migrate")
    assert second.exit_code == 0 and "up to date" in second.output


def test_check_config_ok_and_bad(run_cli, make_config) -> None:
    ok = run_cli("check-config")
    assert ok.exit_code == 0 and "config ok" in ok.output
    bad_dir = make_config({"settings.toml": "[crawl]\nconcurrent_requests = 0\n"})
    bad = run_cli("--config", str(bad_dir), "check-config")
    assert bad.exit_code == 1
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "settings.toml: crawl.concurrent_requests:" in lines[0]
    _no_traceback(bad)


def test_config_from_environment(run_cli, make_config, monkeypatch) -> None:
    bad_dir = make_config({"sources.toml": "oops = 1\n"})
    monkeypatch.setenv("DEALWATCH_CONFIG", str(bad_dir))
    result = run_cli("check-config")
    assert result.exit_code == 1 and "sources.toml: oops: unknown field" in result.output


def test_unreachable_database_is_exit_1(run_cli, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = run_cli("queue", db=blocker / "x.db")
    assert result.exit_code == 1
    assert "cannot open database" in result.output
    _no_traceback(result)


def test_unknown_source_is_exit_1(run_cli) -> None:
    result = run_cli("crawl", "--source", "no-such-source")
    assert result.exit_code == 1
    assert "no source with id 'no-such-source'" in result.output


def test_crawl_with_no_enabled_sources_is_exit_1(run_cli) -> None:
    result = run_cli("crawl")
    assert result.exit_code == 1
    assert "no enabled sources" in result.output


def _seed(db_path: Path) -> None:
    with Store(db_path) as store:
        for n, (kind, score) in enumerate([("deal", 0.91), ("aggregate", 0.6), ("deal", 0.2)]):
            text = f"Story {n}: Huawei signed a contract with Kenya's ICT ministry."
            aid = store.articles.save_article(None, None, Article(
                url=f"http://news.test/{n}", canonical_url=f"https://news.test/{n}", text=text,
                text_hash=f"h{n}", title=f"Story {n}"))
            store.articles.save_analysis(aid, [], [Candidate(
                kind=kind, vendor="huawei", vendors=["huawei"], country="KE",
                counterpart="ICT ministry", counterpart_type="ministry", deal_type="cloud",
                deal_types=["cloud"], stage="signed", value=1.5e9, currency="USD", year=2026,
                score=score, sentence=text, start=0, end=len(text))], "test")


def test_queue_text_and_json(run_cli, db_path) -> None:
    _seed(db_path)
    text = run_cli("queue")
    assert text.exit_code == 0, text.output
    assert text.output.index("0.91") < text.output.index("0.60") < text.output.index("0.20")
    assert "http://news.test/0" in text.output
    assert "counterpart: ICT ministry (ministry)" in text.output
    assert "USD 1.5 billion" in text.output
    data = json.loads(run_cli("queue", "--json", "--kind", "deal").output)
    assert [d["score"] for d in data] == [0.91, 0.2]
    assert data[0]["vendor"] == "huawei" and data[0]["url"] == "http://news.test/0"
    assert json.loads(run_cli("queue", "--json", "--limit", "1").output)[0]["score"] == 0.91
    assert json.loads(run_cli("queue", "--json", "--status", "confirmed").output) == []


def test_queue_on_empty_database(run_cli) -> None:
    assert run_cli("init").exit_code == 0  # a read command refuses a database that is not there
    result = run_cli("queue")
    assert result.exit_code == 0 and "the queue is empty" in result.output


DEAL = "Kenya's Ministry of ICT signed a $48 million contract with Huawei to build a government cloud data centre."


def test_analyze_text_from_stdin(run_cli) -> None:
    result = run_cli("analyze", "-", "--model", "never", input=DEAL)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == "-"
    labels = {(e["label"], e["id"]) for e in data["entities"]}
    assert ("VENDOR", "huawei") in labels and ("COUNTRY", "KE") in labels
    deal = data["candidates"][0]
    assert deal["kind"] == "deal" and deal["vendor"] == "huawei" and deal["country"] == "KE"
    assert set(deal) >= {"vendors", "counterpart", "counterpart_type", "deal_type", "deal_types",
                         "stage", "value", "currency", "year", "score", "sentence", "start", "end"}
    assert DEAL[deal["start"]:deal["end"]] == deal["sentence"]


def test_analyze_html_file(run_cli, tmp_path) -> None:
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><nav>Home | World</nav><article><p>{DEAL}</p></article></body></html>")
    result = run_cli("analyze", str(page), "--model", "never")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "Home | World" not in json.dumps(data)
    assert any(c["vendor"] == "huawei" for c in data["candidates"])


def test_analyze_jsonl_keeps_going_past_bad_lines(run_cli) -> None:
    lines = "\n".join([
        json.dumps({"id": "a", "text": DEAL}),
        "{not json",
        json.dumps({"id": "b", "html": f"<p>{DEAL}</p>"}),
        json.dumps({"id": "c", "text": "The weather was fine."}),
        json.dumps({"id": "d", "html": "<p>x</p>", "url": 5}),
    ])
    result = run_cli("analyze", "--jsonl", "-", "--model", "never", input=lines)
    assert result.exit_code == 1
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in outputs] == ["a", 2, "b", "c", 5]
    assert outputs[0]["candidates"] and outputs[2]["candidates"] and not outputs[3]["candidates"]
    assert "-:2: skipped" in result.stderr


def test_analyze_jsonl_says_in_one_line_when_a_url_is_no_url(run_cli) -> None:
    lines = "\n".join(json.dumps({"id": i, "html": f"<p>{DEAL}</p>", "url": url})
                      for i, url in enumerate(["http://[::1", "https://news.test:99999/a"]))
    result = run_cli("analyze", "--jsonl", "-", "--model", "never", input=lines)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[:2] == [
        "-:1: skipped: not a URL: http://[::1 (Invalid IPv6 URL)",
        "-:2: skipped: not a URL: https://news.test:99999/a (Port out of range 0-65535)"]


def test_analyze_missing_file(run_cli) -> None:
    result = run_cli("analyze", "/nonexistent/file.txt")
    assert result.exit_code == 1 and "cannot read" in result.output


def test_eval_on_own_gold(run_cli, tmp_path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"id": "g1", "text": DEAL, "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Kenya"],
         "deal_type": ["cloud"]},
        {"id": "g2", "text": "The United States banned Huawei equipment from its networks.",
         "is_deal": "no", "vendors": ["Huawei"], "countries": ["United States"], "deal_type": []},
    ]) + "\n")
    text = run_cli("eval", str(gold), "--model", "never")
    assert text.exit_code == 0, text.output
    metrics = json.loads(run_cli("eval", str(gold), "--json", "--model", "never").output)
    assert isinstance(metrics, dict) and metrics
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    result = run_cli("eval", str(bad))
    assert result.exit_code == 1
    assert "bad.jsonl" in result.output
    _no_traceback(result)


def test_watchlist_list_and_add(run_cli, make_config) -> None:
    listed = run_cli("watchlist", "list", "--type", "vendor")
    assert listed.exit_code == 0
    assert "huawei" in listed.output and "Huawei" in listed.output
    assert all(" vendor " in line for line in listed.output.splitlines())
    config_dir = make_config({})
    added = run_cli("--config", str(config_dir), "watchlist", "add", "lumenstar", "--name", "Lumenstar",
                    "--alias", "Lumenstar Technologies", "--type", "vendor", "--country", "cn")
    assert added.exit_code == 0, added.output
    assert (config_dir / "watchlist" / "local.jsonl").exists()
    # the new vendor is tagged, and the shipped watchlist still applies
    result = run_cli("--config", str(config_dir), "analyze", "-", "--model", "never",
                     input="Lumenstar and Huawei supplied scanners to the Kenyan ports authority.")
    ids = {e["id"] for e in json.loads(result.output)["entities"] if e["label"] == "VENDOR"}
    assert ids == {"lumenstar", "huawei"}
    again = run_cli("--config", str(config_dir), "watchlist", "add", "lumenstar", "--name", "N",
                    "--type", "vendor")
    assert again.exit_code == 1 and "already defined" in again.output
    bad = run_cli("--config", str(config_dir), "watchlist", "add", "x", "--name", "X",
                  "--type", "vendor", "--country", "China")
    assert bad.exit_code == 1 and "country" in bad.output
    as_json = run_cli("--config", str(config_dir), "watchlist", "list", "--json")
    assert {"id": "lumenstar", "name": "Lumenstar", "aliases": ["Lumenstar Technologies"], "type": "vendor",
            "country": "CN"} in [json.loads(line) for line in as_json.output.splitlines()]


def test_a_busy_database_is_one_line_and_reading_goes_on(run_cli, db_path) -> None:
    import sqlite3

    _seed(db_path)
    with open(db_path.parent / "settings.toml", "w") as fh:
        fh.write("[database]\nbusy_timeout_ms = 200\n")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        config = ["--config", str(db_path.parent)]
        result = run_cli(*config, "review", "--reviewer", "ana", "defer", "1")
        assert result.exit_code == 1
        assert "database is busy" in result.output and "Traceback" not in result.output
        listed = run_cli(*config, "review", "list", "--json")  # reading takes no write lock
        assert listed.exit_code == 0 and len(json.loads(listed.output)) == 3
        exported = run_cli(*config, "export", "--format", "jsonl")  # logging the export writes
        assert exported.exit_code == 1 and "database is busy" in exported.output
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_watchlist_add_to_a_file_without_a_final_newline(run_cli, make_config) -> None:
    config_dir = make_config({"watchlist/local.jsonl": '{"id": "lumen", "name": "Lumen", "type": "vendor"}'})
    added = run_cli("--config", str(config_dir), "watchlist", "add", "orbis", "--name", "Orbis",
                    "--type", "vendor")
    assert added.exit_code == 0, added.output
    assert run_cli("--config", str(config_dir), "check-config").exit_code == 0
    bad = make_config({"watchlist/local.jsonl": "{broken\n"}, name="bad")
    refused = run_cli("--config", str(bad), "watchlist", "add", "orbis", "--name", "Orbis", "--type", "vendor")
    assert refused.exit_code == 1
    assert (bad / "watchlist" / "local.jsonl").read_text() == "{broken\n"  # nothing written
