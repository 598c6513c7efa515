"""Run health: `dealwatch status` flags the sources a person must look at."""

from __future__ import annotations

import json

from click.testing import CliRunner

from models.registry import Run
from pipeline.cli import main
from pipeline.ingest.health import flags
from pipeline.storage import Store


def _run(run_id: int, crawl: dict, process: dict | None = None, attention: dict | None = None) -> Run:
    counters = {"crawl": crawl, "process": {"sources": process or {}}}
    if attention:
        counters["attention"] = attention
    return Run(id=run_id, kind="run", started_at=f"2026-05-0{run_id}T02:30:00Z", counters=counters)


HEALTHY = {"requests": 10, "articles_new": 4}
PROCESSED = {"articles": 9, "not_article": 1}


def _problems(runs: list[Run]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in flags(runs, stale_after_runs=3, min_pages=5):
        out.setdefault(f.source, set()).add(f.problem)
    return out


def test_a_healthy_source_is_not_flagged() -> None:
    runs = [_run(i, {"a": HEALTHY}, {"a": PROCESSED}) for i in (3, 2, 1)]
    assert _problems(runs) == {}


def test_errors_in_the_last_run() -> None:
    runs = [_run(2, {"a": {**HEALTHY, "errors": {"http_500": 2, "robots": 1}}},
                 attention={"a": "1 feed fetch failed"}), _run(1, {"a": HEALTHY})]
    found = flags(runs)
    assert [(f.source, f.problem) for f in found] == [("a", "errors")]
    assert "http_500 ×2" in found[0].detail and "robots" not in found[0].detail
    assert "1 feed fetch failed" in found[0].detail


def test_deliberate_skips_are_not_errors() -> None:
    assert _problems([_run(1, {"a": {**HEALTHY, "errors": {"robots": 3, "not_html": 1}}})]) == {}


def test_no_new_articles_for_n_runs() -> None:
    quiet = {"requests": 1, "articles_new": 0, "not_modified": 1}
    assert _problems([_run(3, {"a": quiet}), _run(2, {"a": quiet}), _run(1, {"a": HEALTHY})]) == {}
    assert _problems([_run(i, {"a": quiet}) for i in (3, 2, 1)]) == {"a": {"no_new_articles"}}


def test_falling_extraction_yield() -> None:
    good = {"a": {"articles": 9, "not_article": 1}}
    bad = {"a": {"articles": 2, "not_article": 8}}
    runs = [_run(4, {"a": HEALTHY}, bad)] + [_run(i, {"a": HEALTHY}, good) for i in (3, 2, 1)]
    assert _problems(runs) == {"a": {"falling_yield"}}
    # too few pages to judge
    assert _problems([_run(2, {"a": HEALTHY}, {"a": {"not_article": 2}}), _run(1, {"a": HEALTHY}, good)]) == {}


def test_bot_walls() -> None:
    runs = [_run(1, {"a": HEALTHY}, {"a": {"articles": 3, "blocked": 5}})]
    found = flags(runs)
    assert [(f.source, f.problem) for f in found] == [("a", "bot_walls")]
    assert "5 of 8 pages" in found[0].detail


def test_status_command(db_path, monkeypatch) -> None:
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)
    with Store(db_path) as store:
        for _ in range(3):
            run_id = store.runs.start_run("run", ["a"])
            store.runs.finish_run(run_id, "ok", {"crawl": {"a": {"requests": 1, "not_modified": 1}},
                                            "process": {"articles": 0}})
    invoke = lambda *a: CliRunner().invoke(main, ["--db", str(db_path), "status", *a])  # noqa: E731
    text = invoke()
    assert text.exit_code == 0
    assert "run    3 run" in text.output and "304s 1" in text.output
    assert "a: no new articles: no new articles in the last 3 runs" in text.output
    data = json.loads(invoke("--json").output)
    assert data["attention"] == [{"source": "a", "problem": "no_new_articles",
                                  "detail": "no new articles in the last 3 runs"}]
    assert [r["id"] for r in data["runs"]] == [3, 2, 1]
    assert invoke("--check").exit_code == 1


def test_status_on_a_new_database(db_path, monkeypatch) -> None:
    monkeypatch.delenv("DEALWATCH_CONFIG", raising=False)
    assert CliRunner().invoke(main, ["--db", str(db_path), "init"]).exit_code == 0
    result = CliRunner().invoke(main, ["--db", str(db_path), "status", "--check"])
    assert result.exit_code == 0 and "no runs yet" in result.output
