"""`dealwatch serve --workers 2`: two server processes behind one address, on both backends. A
reviewer logs in through one and goes on through the other: the session, the forms' CSRF
tokens, decisions, version conflicts and flash messages hold whichever process answers.

Which process answers is observed from outside, not asked of the server: every request goes on
a new connection, and the test reads from /proc which worker process accepted that connection
(the process holding the socket whose peer is the client's port), opening another connection
until the wanted worker holds one. So each step below names the process that served it."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from servers import database_url, free_port
from webfixtures import PASSWORD, add_reviewers, logged_in, seed_review_queue

from pipeline.config import load_config
from pipeline.review.web import REASON_LABELS, create_app
from pipeline.storage import Store, StoreError
from pipeline.storage.postgres import close_pools, pool_connections
from pipeline.storage.servers import redact

BACKENDS = ("sqlite", "postgresql")
DEALWATCH = str(Path(sys.executable).with_name("dealwatch"))
FLASH = re.compile(r'<p class="flash flash-(\w+)">(.*?)</p>', re.S)
TAB = re.compile(r'class="tab tab-(\w+)[^"]*">\w+ <span class="count">([\d,]+)</span>')
ESTABLISHED = "01"  # the TCP state in /proc/net/tcp


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    text: str
    pid: int  # the worker process that served it

    def header(self, name: str) -> str:
        return next(value for key, value in self.headers if key.lower() == name)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in (Path("/proc") / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        pass
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the connection from client_port ("0" until accepted)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if (state == ESTABLISHED and int(local.split(":")[1], 16) == server_port
                and int(remote.split(":")[1], 16) == client_port):
            return inode
    return None


@dataclass
class Served:
    """A `dealwatch serve --workers 2` process, over the database at `location` seeded with
    the candidates `ids`; connections to it whose accepting worker is known."""

    process: subprocess.Popen[bytes]
    port: int
    location: str
    ids: dict[str, int]

    def holder(self, conn: http.client.HTTPConnection) -> int:
        """The worker process that accepted this connection (waits for the accept)."""
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            inode = _server_side_inode(self.port, client_port)
            if inode not in (None, "0"):
                for pid in _children(self.process.pid):
                    if inode in _socket_inodes(pid):
                        return pid
            time.sleep(0.01)
        raise AssertionError(f"no worker of pid {self.process.pid} accepted the connection")

    def connection(self, worker: int | None) -> tuple[http.client.HTTPConnection, int]:
        """A new connection accepted by `worker` (any worker for None), and that worker."""
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.connect()
            pid = self.holder(conn)
            if worker is None or pid == worker:
                return conn, pid
            conn.close()
        raise AssertionError(f"200 connections, none accepted by worker {worker}")

    def workers(self) -> tuple[int, int]:
        """The two worker processes, each seen accepting a connection."""
        seen: set[int] = set()
        for _ in range(200):
            conn, pid = self.connection(None)
            conn.close()
            seen.add(pid)
            if len(seen) == 2:
                first, second = sorted(seen)
                return first, second
        raise AssertionError(f"200 connections, all accepted by {seen}")


@dataclass
class Browser:
    """A reviewer's browser: its cookies, and requests sent to the worker it is told."""

    served: Served
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, worker: int, method: str, path: str,
                form: dict[str, str] | None = None) -> Answer:
        """One request on a new connection that `worker` accepted (Connection: close), with this
        browser's cookies, which the answer updates."""
        conn, pid = self.served.connection(worker)
        port = self.served.port
        headers = {"Connection": "close", "Host": f"127.0.0.1:{port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{port}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            answer = Answer(response.status, response.getheaders(),
                            response.read().decode("utf-8"), pid)
        finally:
            conn.close()
        for name, value in answer.headers:
            if name.lower() == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(morsel.key, None)
                    else:
                        self.cookies[morsel.key] = morsel.value
        return answer


@pytest.fixture
def served(store_location: str, tmp_path: Path) -> Iterator[Served]:
    with Store(store_location) as store:
        ids = seed_review_queue(store)
        add_reviewers(store, "alice", "bob")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "DEALWATCH_DB": store_location}
    env.pop("DEALWATCH_CONFIG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DEALWATCH, "serve", "--workers", "2", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve ended ({process.returncode}): {log.read_text()}")
            try:
                with http_get(port, "/login") as status:
                    if status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer: {log.read_text()}")
            time.sleep(0.1)
        yield Served(process, port, store_location, ids)
    finally:
        workers = _children(process.pid)
        process.terminate()  # uvicorn's supervisor stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # then its workers too, which it did not stop
            process.kill()
            process.wait()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class http_get:
    """`with http_get(port, path) as status`: a GET on a connection of its own."""

    def __init__(self, port: int, path: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.path = path

    def __enter__(self) -> int:
        self.conn.request("GET", self.path, headers={"Connection": "close"})
        response = self.conn.getresponse()
        response.read()
        return response.status

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def form_value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field in the page"
    return found.group(1)


def tabs(page: str) -> dict[str, int]:
    """The queue page's count per status tab."""
    return {status: int(count.replace(",", "")) for status, count in TAB.findall(page)}


def log_in(browser: Browser, name: str, form_from: int, post_to: int) -> None:
    """Log in with the login form one worker served, posted to the other; then the first takes
    the session the second made."""
    form = browser.request(form_from, "GET", "/login")
    assert form.status == 200 and form.pid == form_from
    answer = browser.request(post_to, "POST", "/login", {
        "name": name, "password": PASSWORD, "csrf_token": form_value(form.text, "csrf_token")})
    assert answer.status == 303, answer.text
    queue = browser.request(form_from, "GET", "/queue")
    assert queue.status == 200 and f'<span class="user" title="Signed in">{name}</span>' in queue.text


def test_a_reviewer_works_through_both_processes(served: Served) -> None:
    first, second = served.workers()
    assert served.process.pid not in (first, second)
    candidate = served.ids["zte-ET"]
    alice, bob = Browser(served), Browser(served)
    log_in(alice, "alice", form_from=first, post_to=second)
    log_in(bob, "bob", form_from=second, post_to=first)
    # bob has the candidate open, from the second process
    bob_page = bob.request(second, "GET", f"/candidate/{candidate}")
    assert bob_page.status == 200
    # alice opens it from the first, at the same version, and rejects it through the second
    # with the token of the first's form
    page = alice.request(first, "GET", f"/candidate/{candidate}")
    assert page.status == 200
    assert form_value(page.text, "version") == form_value(bob_page.text, "version")
    # each process has counted the queue (and keeps its counts: web.queue.ViewCounts)
    counts = {worker: tabs(alice.request(worker, "GET", "/queue").text) for worker in (first, second)}
    assert counts[first] == counts[second] and counts[first]["pending"] > 0
    decided = alice.request(second, "POST", f"/candidate/{candidate}/decide", {
        "csrf_token": form_value(page.text, "csrf_token"),
        "version": form_value(page.text, "version"), "decision": "reject",
        "reason": "domestic", "return": "queue"})
    assert decided.status == 303, decided.text
    # its message shows once, on the next page, which the first process serves
    after = alice.request(first, "GET", decided.header("location"))
    assert FLASH.findall(after.text) == [
        ("ok", f"#{candidate} rejected ({REASON_LABELS['domestic']}). Press u to undo.")]
    for worker in (second, first):
        queue = alice.request(worker, "GET", "/queue")
        assert FLASH.findall(queue.text) == []
        assert f'data-id="{candidate}"' not in queue.text
        assert f'data-id="{served.ids["syndicated"]}"' in queue.text
        assert tabs(queue.text) == {**counts[worker], "pending": counts[worker]["pending"] - 1,
                                    "rejected": counts[worker]["rejected"] + 1}
        shown = alice.request(worker, "GET", f"/candidate/{candidate}")
        assert 'status-rejected">rejected<' in shown.text
        assert "by <strong>alice</strong>" in shown.text
    # bob's stale form, posted to the first process: the conflict page, and nothing saved
    stale = bob.request(first, "POST", f"/candidate/{candidate}/decide", {
        "csrf_token": form_value(bob_page.text, "csrf_token"),
        "version": form_value(bob_page.text, "version"), "decision": "confirm",
        "return": "queue"})
    assert stale.status == 409 and "Someone else decided first." in stale.text
    with Store(served.location, migrate=False) as store:
        entry = store.candidates.candidate(candidate)
        assert entry is not None and entry.status == "rejected"
        assert [(r.reviewer, r.decision) for r in store.reviews.reviews_of(candidate)] == [
            ("alice", "reject")]


# -- the pool of server connections each web process keeps (storage.postgres) --


@pytest.fixture
def pooled_url(postgres_databases: Any) -> Iterator[str]:
    """A new database on the test server; the pools this test makes are closed after it."""
    url = postgres_databases.new()
    try:
        yield url
    finally:
        close_pools()
        postgres_databases.drop(url)


def connections(url: str) -> list[int]:
    """The server processes connected to the database at url, seen from another connection."""
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as admin:
        return [row[0] for row in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [url.rsplit("/", 1)[1]])]


def test_stores_borrow_at_most_the_pools_connections(pooled_url: str) -> None:
    pool_connections(pooled_url, 3, busy_timeout_ms=2500)
    held = [Store(pooled_url, 2500, migrate=False) for _ in range(3)]
    assert len(connections(pooled_url)) == 3
    for store in held:
        store.close()
    backends: set[int] = set()

    def open_and_close(times: int) -> None:
        for _ in range(times):
            with Store(pooled_url, 2500, migrate=False) as store:
                backends.add(next(store.database.query("SELECT pg_backend_pid() AS pid"))["pid"])
                setting = next(store.database.query("SHOW lock_timeout"))
                assert setting == {"lock_timeout": "2500ms"}  # set once, when connected

    threads = [threading.Thread(target=open_and_close, args=(40,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(backends) <= 3 and len(connections(pooled_url)) <= 3
    # a database opened with another busy timeout is not the pool's: a connection of its own
    with Store(pooled_url, 1000, migrate=False) as other:
        assert next(other.database.query("SHOW lock_timeout")) == {"lock_timeout": "1s"}
        assert next(other.database.query("SELECT pg_backend_pid() AS pid"))["pid"] not in backends


def test_a_connection_the_server_dropped_is_replaced_when_borrowed(pooled_url: str) -> None:
    pool_connections(pooled_url, 2)
    with Store(pooled_url, migrate=False) as store:
        store.accounts.users()
    dropped = connections(pooled_url)
    assert dropped
    with psycopg.connect(database_url(pooled_url, "postgres"), autocommit=True) as admin:
        for pid in dropped:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])  # as a server restart does
    with Store(pooled_url, migrate=False) as store:
        assert store.accounts.users() == []
        assert next(store.database.query("SELECT pg_backend_pid() AS pid"))["pid"] not in dropped


def test_a_server_lost_mid_request_is_one_line(pooled_url: str) -> None:
    with Store(pooled_url, migrate=False) as store:
        pid = next(store.database.query("SELECT pg_backend_pid() AS pid"))["pid"]
        with psycopg.connect(database_url(pooled_url, "postgres"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(StoreError) as lost:
            store.accounts.users()
        with pytest.raises(StoreError), store.transaction():
            pass
    shown = str(lost.value)
    assert shown.startswith(f"cannot reach the database at {redact(pooled_url)}: ")
    assert "\n" not in shown


def test_the_web_app_answers_503_while_the_database_refuses(
        pooled_url: str, make_config: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = (Path(load_config().files["settings.toml"]).read_text()
                .replace("busy_timeout_ms = 10000", "busy_timeout_ms = 500"))
    config = load_config(make_config({"settings.toml": settings}))
    with Store(pooled_url, migrate=False) as store:
        add_reviewers(store, "alice")
    client = logged_in(create_app(config, pooled_url, secure_cookies=False), "alice")
    name = pooled_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url(pooled_url, "postgres"), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s", [name])
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.review.web.app"):
            page = client.get("/queue")
        assert page.status_code == 503 and page.headers["retry-after"] == "5"
        assert "The database cannot be reached" in page.text and "busy" not in page.text
        said = [r.getMessage() for r in caplog.records if r.name == "pipeline.review.web.app"]
        assert said == [f'GET /queue: cannot reach the database at {redact(pooled_url)}: '
                        f'database "{name}" is not currently accepting connections']
    finally:
        with psycopg.connect(database_url(pooled_url, "postgres"), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert client.get("/queue").status_code == 200  # the pool connects again
