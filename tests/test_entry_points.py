"""The entry points start light, and the nightly job's health is advice on a run already recorded."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.jobs.nightly as nightly
import pipeline.jobs.process_runs as process_runs
from pipeline.config import load_config
from pipeline.ingest.crawl import CrawlReport
from pipeline.jobs.exits import exit_status
from pipeline.jobs.process import ProcessReport
from pipeline.jobs.runs import Terminated
from pipeline.storage import Store

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("rich", "apscheduler", "http.server", "spacy", "scrapy", "trafilatura", "uvicorn")


def _loaded_by(module: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after importing module."""
    code = (f"import json, sys, {module}; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", ["pipeline.cli", "pipeline.jobs.nightly"])
def test_help_and_usage_errors_load_nothing_heavy(module: str) -> None:
    # `dealwatch --help` answers at once; the scheduler's process takes over SIGTERM before spaCy
    assert _loaded_by(module) == []


def test_the_cli_and_the_nightly_process_map_errors_alike() -> None:
    busy = exit_status(sqlite3.OperationalError("database is locked"))
    assert busy is not None and busy.code == 1 and "the database is busy" in busy.message
    assert exit_status(Terminated("stopped by SIGTERM")) == (143, "stopped by SIGTERM")
    assert exit_status(KeyboardInterrupt()) == (130, "interrupted")
    assert exit_status(sqlite3.OperationalError("no such table: x")) is None  # a bug: traceback
    assert exit_status(ValueError("x")) is None


def _nothing_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nightly, "crawl_sources", lambda *a, **k: CrawlReport({}, True, 0, ""))
    monkeypatch.setattr(process_runs, "process_new", lambda *a, **k: ProcessReport())


def test_a_busy_database_after_the_run_is_recorded_leaves_it_ok(db_path, make_config, monkeypatch,
                                                               caplog) -> None:
    _nothing_to_do(monkeypatch)

    def busy(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(nightly, "health", busy)
    report = nightly.run_nightly(load_config(make_config()), db_path)
    assert report.ok and report.health == []
    assert "the sources' health could not be judged" in caplog.text
    with Store(db_path) as store:
        assert store.db.execute("SELECT outcome FROM runs").fetchall() == [("ok",)]


def test_a_bug_in_judging_health_still_raises(db_path, make_config, monkeypatch) -> None:
    _nothing_to_do(monkeypatch)

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("no such column: outcome")

    monkeypatch.setattr(nightly, "health", broken)
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        nightly.run_nightly(load_config(make_config()), db_path)
