"""Database and Redis URLs: shown without their password, an unreachable server in one line with
exit 1, and (marked `servers`) the real test servers: reachable, PostgreSQL's row locking and
Redis's expiry as the workers will use them, and stopped whatever the test did."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import conftest
import psycopg
import pytest
import redis
import servers

from pipeline.jobs.exits import exit_status
from pipeline.storage.servers import ServerError, check_postgres, check_redis, is_database_url, redact

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://dealwatch:s3cret@127.0.0.1:5432/dealwatch", "postgresql://dealwatch@127.0.0.1:5432/dealwatch"),
    ("postgres://alice:p%40ss%2Fw0rd@db.example:5432/deals", "postgres://alice@db.example:5432/deals"),
    ("postgresql://alice:a/b@c@db.example/deals", "postgresql://alice@db.example/deals"),  # unescaped / and @
    ("postgresql://dealwatch@127.0.0.1:5432/dealwatch", "postgresql://dealwatch@127.0.0.1:5432/dealwatch"),
    ("postgresql://alice@db/deals?sslmode=require&password=hunter2&application_name=dw",
     "postgresql://alice@db/deals?sslmode=require&application_name=dw"),
    ("postgresql:///deals?host=/var/run/postgresql&PASSWORD=hunter2", "postgresql:///deals?host=/var/run/postgresql"),
    ("redis://:hunter2@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("rediss://crawler:hunter2@cache.example:6380/1", "rediss://crawler@cache.example:6380/1"),
    ("unix://:hunter2@/run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("data/dealwatch.db", "data/dealwatch.db"),
])
def test_redact_shows_the_url_without_its_password(url: str, shown: str) -> None:
    assert redact(url) == shown
    for secret in ("s3cret", "p%40ss", "p@ss", "hunter2", "a/b@c"):
        assert secret not in redact(url)


@pytest.mark.parametrize(("text", "is_url"), [
    ("postgresql://dealwatch@127.0.0.1:5432/dealwatch", True),
    ("postgres://db/deals", True),
    ("PostgreSQL://db/deals", True),
    ("data/dealwatch.db", False),
    ("/srv/postgresql/dealwatch.db", False),
    ("postgresql.db", False),
    ("redis://127.0.0.1:6379/0", False),
])
def test_is_database_url_tells_a_server_from_a_sqlite_file(text: str, is_url: bool) -> None:
    assert is_database_url(text) is is_url


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then let go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("check", "url", "shown"), [
    (check_postgres, "postgresql://dealwatch:s3cret@127.0.0.1:{port}/dealwatch",
     "cannot reach the database at postgresql://dealwatch@127.0.0.1:{port}/dealwatch"),
    (check_redis, "redis://crawler:hunter2@127.0.0.1:{port}/0", "cannot reach Redis at redis://crawler@127.0.0.1:{port}/0"),
], ids=["postgresql", "redis"])
def test_an_unreachable_server_is_one_line_without_the_password_and_exit_1(
        check: Callable[..., None], url: str, shown: str) -> None:
    port = closed_port()
    with pytest.raises(ServerError) as caught:
        check(url.format(port=port), timeout=5)
    message = str(caught.value)
    assert message == shown.format(port=port) + ": connection refused"
    assert exit_status(caught.value) == (1, f"error: {message}")


def test_a_password_the_driver_quotes_back_is_hidden() -> None:
    # libpq quotes a badly escaped password in its message; it must not reach the user.
    port = closed_port()
    with pytest.raises(ServerError) as caught:
        check_postgres(f"postgresql://dealwatch:s3%zzcret@127.0.0.1:{port}/dealwatch", timeout=5)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the database at postgresql://dealwatch@127.0.0.1:{port}/dealwatch: ")
    assert "s3" not in message.partition(": ")[2] and "zzcret" not in message
    assert "\n" not in message


def test_a_sqlite_path_is_not_a_postgresql_url() -> None:
    with pytest.raises(ServerError, match=r"^not a PostgreSQL URL: data/dealwatch\.db "):
        check_postgres("data/dealwatch.db")


def test_a_redis_url_redis_py_cannot_read_is_one_line() -> None:
    with pytest.raises(ServerError) as caught:
        check_redis("http://crawler:hunter2@127.0.0.1:6379/0")
    assert str(caught.value).startswith("cannot reach Redis at http://crawler@127.0.0.1:6379/0: ")
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_missing_server_binaries_skip_here_and_fail_where_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_SERVERS", False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        conftest._servers_needed("redis-server is not installed")
    monkeypatch.setattr(conftest, "REQUIRE_SERVERS", True)
    with pytest.raises(pytest.fail.Exception, match="DEALWATCH_REQUIRE_SERVERS=1 requires it"):
        conftest._servers_needed("redis-server is not installed")


def test_ci_installs_the_servers_and_requires_them() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "export DEALWATCH_REQUIRE_SERVERS=1" in ci
    assert "postgresql" in ci and "redis-server" in ci


# The real servers.

@pytest.mark.servers
def test_the_test_servers_are_reachable(postgres_url: str, redis_url: str) -> None:
    assert postgres_url.startswith("postgresql://dealwatch@127.0.0.1:") and postgres_url.endswith("/dealwatch")
    assert redis_url.startswith("redis://127.0.0.1:") and redis_url.endswith("/0")
    check_postgres(postgres_url)
    check_redis(redis_url)


@pytest.mark.servers
def test_a_server_that_refuses_us_is_one_line(postgres_url: str) -> None:
    base = postgres_url.rsplit("/", 1)[0]
    with pytest.raises(ServerError) as caught:
        check_postgres(base.replace("dealwatch@", "dealwatch:s3cret@") + "/no_such_database")
    assert str(caught.value) == (f"cannot reach the database at {base}/no_such_database: "
                                 'database "no_such_database" does not exist')


@pytest.mark.servers
def test_skip_locked_lets_a_second_worker_pass_a_claimed_row(postgres_url: str) -> None:
    table = f"claims_{uuid.uuid4().hex[:12]}"
    claim = f"SELECT id FROM {table} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with psycopg.connect(postgres_url, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, url text NOT NULL)")
        setup.execute(f"INSERT INTO {table} VALUES (1, 'https://a.test/1'), (2, 'https://a.test/2')")
        try:
            with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
                assert first.execute(claim).fetchall() == [(1,)]
                assert second.execute(claim).fetchall() == [(2,)]  # row 1 is skipped, not waited for
                assert second.execute(claim).fetchall() == [(2,)]  # its own lock does not hide row 2
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    second.execute(f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE NOWAIT")
                second.rollback()
                first.commit()  # the first worker's claim ends: row 1 is free again
                assert second.execute(claim).fetchall() == [(1,)]
                second.rollback()
        finally:
            setup.execute(f"DROP TABLE {table}")


@pytest.mark.servers
def test_redis_keeps_a_value_and_expires_a_key(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"dealwatch-test:{uuid.uuid4().hex}"
    try:
        assert client.set(f"{key}:kept", "https://a.test/1")
        assert client.get(f"{key}:kept") == "https://a.test/1"
        with client.pipeline(transaction=True) as multi:  # one step: the TTL is read as it was set
            multi.set(f"{key}:claim", "worker-1")
            multi.pexpire(f"{key}:claim", 100)
            multi.pttl(f"{key}:claim")
            _set, _expire, ttl = multi.execute()
        assert 0 < ttl <= 100
        deadline = time.monotonic() + 30
        while client.exists(f"{key}:claim") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get(f"{key}:claim") is None
        assert client.get(f"{key}:kept") == "https://a.test/1"
    finally:
        client.delete(f"{key}:kept", f"{key}:claim")
        client.close()


@pytest.mark.servers
def test_the_servers_stop_and_leave_nothing_even_when_the_test_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # Their own temporary folder, which PostgreSQL's user can enter (pytest's tmp_path is private).
    temp = Path(tempfile.mkdtemp(prefix="dealwatch-test-servers-"))
    temp.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    try:
        with pytest.raises(RuntimeError, match="the test failed"), servers.postgres_server() as pg, \
                servers.redis_server() as rd:
            check_postgres(pg)
            check_redis(rd)
            assert len(list(temp.iterdir())) == 2  # a folder for each
            raise RuntimeError("the test failed")
        assert list(temp.iterdir()) == []
    finally:
        shutil.rmtree(temp)
    with pytest.raises(ServerError, match="connection refused"):
        check_postgres(pg, timeout=5)
    with pytest.raises(ServerError, match="connection refused"):
        check_redis(rd, timeout=5)


@pytest.mark.servers
def test_a_port_another_server_took_first_is_never_taken_for_ours(
        postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another test session's servers took the ports free_port() chose (the session's own stand
    # in for them here): ours fail to bind and start on other ports, never using theirs.
    def port_of(url: str) -> int:
        return int(url.rsplit(":", 1)[1].split("/")[0])

    taken = [port_of(postgres_url), port_of(redis_url)]
    real = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: taken.pop() if taken else real())
    with servers.redis_server() as rd:
        assert port_of(rd) != port_of(redis_url)
        check_redis(rd)
    with servers.postgres_server() as pg:
        assert port_of(pg) != port_of(postgres_url)
        check_postgres(pg)


# --- a server's URL given as the database -------------------------------------------------


@pytest.mark.parametrize("how", ["--db", "DEALWATCH_DB"])
def test_an_unreachable_database_url_is_one_line_without_its_password(
        how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pipeline.cli import main

    url = f"postgresql://ann:s3cret-pw@127.0.0.1:{closed_port()}/registry"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEALWATCH_DB", raising=False)
    args, env = (["--db", url, "init"], None) if how == "--db" else (["init"], {"DEALWATCH_DB": url})
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach the database at postgresql://ann@127.0.0.1:" in lines[0]
    assert f"(from {how})" in lines[0]
    assert "s3cret" not in result.output
    assert list(tmp_path.iterdir()) == []  # no folder named after the URL, no database


def test_the_nightly_entry_refuses_a_database_url_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.jobs import nightly

    monkeypatch.chdir(tmp_path)
    code = nightly.main(["--db", f"postgres://ann:s3cret-pw@127.0.0.1:{closed_port()}/registry"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0 and "cannot reach the database" in err
    assert "s3cret" not in err and list(tmp_path.iterdir()) == []


def test_a_database_without_dealwatch_tables_is_not_filled_by_a_command_that_only_reads(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server answers, but its database has no dealwatch tables: `status` says so in one
    line and points to `init`, rather than making the tables and reporting an empty database."""
    from click.testing import CliRunner

    from pipeline.cli import main

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS no_tables_yet")
        conn.execute("CREATE DATABASE no_tables_yet")
    url = postgres_url.rsplit("/", 1)[0] + "/no_tables_yet"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--db", url, "status"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"{url} has no dealwatch tables; `dealwatch --db {url} init` creates them" \
        in result.stderr
    assert list(tmp_path.iterdir()) == []
    with psycopg.connect(url) as conn:  # nothing made on the server either
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
    result = CliRunner().invoke(main, ["--db", url, "init"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(main, ["--db", url, "status"]).exit_code == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE no_tables_yet WITH (FORCE)")
