"""Real PostgreSQL and Redis servers for the tests: Debian's binaries, started on a free loopback
port in a fresh temporary directory, stopped and removed on exit.

`postgres_server()` runs `initdb` and `postgres` (as the `postgres` user when the tests run as root,
as CI does: PostgreSQL refuses to run as root), creates the `dealwatch` role and database and yields
`postgresql://dealwatch@127.0.0.1:PORT/dealwatch`. `redis_server()` runs `redis-server` without
persistence and yields `redis://127.0.0.1:PORT/0`. Both wait for the server to answer by polling
with a generous deadline (never a fixed sleep), and neither opens a unix socket.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis

# Slow or busy machines (CI shares two cores with the browser tests) take seconds, not minutes:
# the deadline is there to turn a server that never comes up into a failure, not to pace anything.
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and the server binding it
POSTGRES_USER = "postgres"  # the Debian account PostgreSQL runs as when the tests run as root
ROLE = DATABASE = "dealwatch"


class ServerStartError(RuntimeError):
    """A server whose binaries are there did not start: a failed test, never a skip."""


def _postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL server binaries (/usr/lib/postgresql/N/bin), else any on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name)
                   if Path(path).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_missing() -> str | None:
    """Why a PostgreSQL server cannot be started here (None when it can)."""
    bin_dir = _postgres_bin()
    if bin_dir is None or not (bin_dir / "postgres").exists():
        return ("PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): "
                "`.ci/run` installs Debian's postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return (f"the tests run as root and there is no `{POSTGRES_USER}` user to run PostgreSQL as: "
                    "Debian's postgresql package creates it")
    return None


def redis_missing() -> str | None:
    """Why a Redis server cannot be started here (None when it can)."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: `.ci/run` installs Debian's redis-server"
    return None


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres() -> dict[str, Any]:
    """subprocess arguments that run a PostgreSQL binary as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": POSTGRES_USER, "group": pwd.getpwnam(POSTGRES_USER).pw_gid, "extra_groups": []}


def _check_traversable(directory: Path) -> None:
    """PostgreSQL runs as `postgres`, which must be able to enter every parent of its directory."""
    for parent in directory.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise ServerStartError(
                f"PostgreSQL runs as {POSTGRES_USER}, which cannot enter {parent}: point TMPDIR at a "
                "directory every user can traverse, such as /tmp")


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    """Poll `ready()` until it answers True; fail when the process exits or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with code {process.returncode} before accepting "
                                   f"connections; its log ends:\n{_log_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"{name} did not accept connections within {START_DEADLINE:.0f} s; "
                                   f"its log ends:\n{_log_tail(log)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], polite: signal.Signals) -> None:
    """Ask the server to stop; kill it when it does not within the deadline."""
    if process.poll() is None:
        process.send_signal(polite)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE)


@contextmanager
def _serving(name: str, start: Callable[[int, Path], subprocess.Popen[bytes]], answers: Callable[[int], bool],
             log: Path, port_taken: str, stop_signal: signal.Signals,
             abort_signal: signal.Signals) -> Iterator[int]:
    """Start a server on a free port (another, when the one chosen was taken meanwhile), wait until
    it answers, yield its port, and stop it on exit, whatever happened in between."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        process = start(port, log)
        try:
            _wait_until(lambda: answers(port), process, name, log)  # noqa: B023 (called at once)
        except ServerStartError:
            _stop(process, abort_signal)
            if port_taken in _log_tail(log) and attempt < PORT_ATTEMPTS:
                continue
            raise
        except BaseException:
            _stop(process, abort_signal)
            raise
        try:
            yield port
        finally:
            _stop(process, stop_signal)
        return


def _postgres_answers(port: int, data: Path) -> bool:
    """Our server answers on the port: not only some PostgreSQL (another test session's took
    the port between free_port() and our server binding it, ours failing to bind and about to
    exit) but the one whose data directory this is."""
    try:
        with psycopg.connect(admin_url(port), connect_timeout=2) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.OperationalError:
        return False
    return row is not None and os.path.realpath(row[0]) == os.path.realpath(data)


def admin_url(port: int) -> str:
    """The superuser's URL on the test server at this port (trust on loopback)."""
    return f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/postgres"


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the tests; yields its URL for the `dealwatch` role and database."""
    missing = postgres_missing()
    if missing:
        raise ServerStartError(missing)
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    run_as = _as_postgres()
    directory = Path(tempfile.mkdtemp(prefix="dealwatch-postgres-"))
    try:
        if run_as:
            _check_traversable(directory)
            shutil.chown(directory, user=POSTGRES_USER, group=run_as["group"])
        data = directory / "data"
        # trust: only loopback TCP is open, and only for the life of the test session.
        initdb = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", POSTGRES_USER, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True, text=True, cwd=directory, **run_as)
        if initdb.returncode != 0:
            raise ServerStartError(f"initdb failed (exit {initdb.returncode}): {initdb.stderr.strip()}")

        def start(port: int, log: Path) -> subprocess.Popen[bytes]:
            return _start_postgres(bin_dir, data, log, port, run_as)

        # SIGINT is PostgreSQL's fast shutdown (clients are disconnected); SIGQUIT its immediate one.
        with _serving("PostgreSQL", start, lambda port: _postgres_answers(port, data),
                      directory / "postgres.log", "could not bind", signal.SIGINT, signal.SIGQUIT) as port:
            with psycopg.connect(admin_url(port), autocommit=True) as conn:
                conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB")
                conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
            yield f"postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start_postgres(bin_dir: Path, data: Path, log: Path, port: int,
                    run_as: dict[str, Any]) -> subprocess.Popen[bytes]:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",  # loopback TCP only
        # A test server's data is thrown away: durability only costs time.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "32MB",
    }
    args = [str(bin_dir / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    with log.open("wb") as out:
        if run_as:
            shutil.chown(log, user=POSTGRES_USER, group=run_as["group"])
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=data.parent, **run_as)


def _redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def _redis_answers(port: int, directory: Path) -> bool:
    """Our redis-server answers on the port: the one working in this directory, not another
    test session's that took the port first (see _postgres_answers)."""
    client = redis.Redis.from_url(_redis_url(port), socket_connect_timeout=2, socket_timeout=2)
    try:
        found = client.config_get("dir").get("dir")
        return found is not None and os.path.realpath(found) == os.path.realpath(directory)
    except redis.RedisError:  # refused, or another program on the port
        return False
    finally:
        client.close()


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server for the tests, keeping nothing on disk; yields its URL (database 0)."""
    missing = redis_missing()
    if missing:
        raise ServerStartError(missing)
    directory = Path(tempfile.mkdtemp(prefix="dealwatch-redis-"))

    def start(port: int, log: Path) -> subprocess.Popen[bytes]:
        return _start_redis(directory, port, log)

    try:
        # Without persistence, SIGTERM stops Redis at once and writes nothing.
        with _serving("redis-server", start, lambda port: _redis_answers(port, directory),
                      directory / "redis.log", "Address already in use", signal.SIGTERM, signal.SIGKILL) as port:
            yield _redis_url(port)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start_redis(directory: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    log.unlink(missing_ok=True)
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--unixsocket", "",
            "--dir", str(directory), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", str(log)]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=directory)


# A test server stopped on purpose (a client losing it), started again on the same port: back
# once it answers, stopped on exit whatever happened in between.

@contextmanager
def postgres_started_again(data: Path, port: int) -> Iterator[None]:
    """The test server whose data directory this is, started again on its port."""
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    log = data.parent / "again.log"
    process = _start_postgres(bin_dir, data, log, port, _as_postgres())
    try:
        _wait_until(lambda: _postgres_answers(port, data), process, "PostgreSQL", log)
        yield
    finally:
        _stop(process, signal.SIGINT)


@contextmanager
def redis_started_again(port: int, directory: Path) -> Iterator[None]:
    """A redis-server on the port a stopped one had, keeping nothing on disk (log in directory)."""
    log = directory / "redis-again.log"
    process = _start_redis(directory, port, log)
    try:
        _wait_until(lambda: _redis_answers(port, directory), process, "redis-server", log)
        yield
    finally:
        _stop(process, signal.SIGTERM)


def database_url(url: str, name: str) -> str:
    """The same server and role, another database."""
    return url.rsplit("/", 1)[0] + f"/{name}"


class PostgresDatabases:
    """Fresh, migrated dealwatch databases on one test server, one per test: each a copy of a
    template migrated once (`CREATE DATABASE … TEMPLATE`, a file copy), dropped after."""

    TEMPLATE = "dealwatch_template"

    def __init__(self, url: str):
        self.url = url
        self._made = 0
        self._template_ready = False

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(database_url(self.url, "postgres"), autocommit=True)

    def new(self) -> str:
        if not self._template_ready:
            from pipeline.storage import Store  # the schema as this checkout migrates it

            with self._admin() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.TEMPLATE}")
                conn.execute(f"CREATE DATABASE {self.TEMPLATE}")
            Store(database_url(self.url, self.TEMPLATE)).close()
            self._template_ready = True
        self._made += 1
        name = f"t{os.getpid()}_{self._made}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return database_url(self.url, name)

    def drop(self, url: str) -> None:
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
