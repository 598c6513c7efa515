"""Pushing the registry to an HTTP endpoint (a real server on 127.0.0.1:0): each deal version once,
with its idempotency key; a server failing half way loses nothing and gets nothing twice."""


from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from registryfixtures import kenya_cloud

from pipeline.cli import main
from pipeline.review.decisions import decide
from pipeline.review.export import ExportError, push_deals
from pipeline.review.registry import merge_deals
from pipeline.storage import Store

BACKENDS = ("sqlite", "postgresql")  # conftest: each test that uses a store, on both


@dataclass
class Registry:
    """A registry endpoint that keeps what it accepted by idempotency key, as a real one should.

    `behave(n, key)` picks what to do with the n-th request (1-based): "ok", "drop" (process it,
    then close the connection without answering), or an HTTP status to answer with instead.
    """

    behave: Callable[[int, str], Any] = lambda n, key: "ok"
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [key for key, _, _ in self.requests]


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("Idempotency-Key", "")
            with registry.lock:
                registry.requests.append((key, dict(self.headers), body))
                action = registry.behave(len(registry.requests), key)
                if action in ("ok", "drop"):
                    duplicate = key in registry.accepted
                    registry.accepted.setdefault(key, body)
            if action == "drop":
                self.close_connection = True  # processed, but the answer is lost
                return
            if action == "ok":
                self._answer(409 if duplicate else 201, {"key": key})
            elif isinstance(action, tuple):
                status, headers = action
                self._answer(status, {"error": "try later"}, headers)
            else:
                self._answer(int(action), {"error": "no"})

        def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
                    ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def endpoint() -> Iterator[Registry]:
    registry = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    registry.url = f"http://127.0.0.1:{server.server_address[1]}/api/deals"
    yield registry
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """Four deals: the Kenyan cloud, the Ugandan cameras, and two more filed as new deals."""
    with Store(store_location) as s:
        ids = kenya_cloud(s)
        decide(s, ids["mou"], "confirm", "ann")
        decide(s, ids["uganda"], "confirm", "ann")
        decide(s, ids["signed"], "confirm", "ann", deal_id="new")
        decide(s, ids["completed"], "confirm", "ann", deal_id="new")
        yield s


def _push(store: Store, url: str, sleeps: list[float] | None = None, **kw: Any):
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.5)
    kw.setdefault("timeout", 5)
    return push_deals(store, url, sleep=(sleeps if sleeps is not None else []).append, **kw)


def _deal_versions(store: Store) -> dict[str, str]:
    return {d.deal_id: f"{d.deal_id}-v{d.version}" for d in store.registry.deals()}


def test_every_deal_is_sent_once_with_its_idempotency_key(store, endpoint) -> None:
    report = _push(store, endpoint.url)
    assert report.ok and len(report.sent) == 4 and report.up_to_date == 0
    assert endpoint.keys() == list(_deal_versions(store).values())
    key, headers, body = endpoint.requests[0]
    assert key == "dw-000001-v" + str(store.registry.deal(1).version)
    assert headers["Content-Type"] == "application/json"
    assert body["deal_id"] == "dw-000001" and body["country_name"] == "Kenya"
    assert body["version"] == store.registry.deal(1).version and len(body["sources"]) == 2
    # nothing new: nothing sent
    again = _push(store, endpoint.url)
    assert again.sent == [] and again.up_to_date == 4 and len(endpoint.requests) == 4


def test_a_changed_deal_is_sent_again_as_its_new_version(store, endpoint) -> None:
    _push(store, endpoint.url)
    store.registry.update_deal(2, {"stage": "completed"})
    report = _push(store, endpoint.url)
    assert report.sent == [f"dw-000002-v{store.registry.deal(2).version}"] and report.up_to_date == 3
    assert endpoint.accepted[report.sent[0]]["stage"] == "completed"


def test_server_failing_half_way_loses_nothing_and_sends_nothing_twice(store, endpoint, store_location) -> None:
    endpoint.behave = lambda n, key: "ok" if n <= 2 else 500
    sleeps: list[float] = []
    report = _push(store, endpoint.url, sleeps)
    assert not report.ok
    assert len(report.sent) == 2 and len(report.failed) == 2
    assert all("HTTP 500" in why for _, why in report.failed)
    assert sleeps == [0.5, 1.0, 0.5, 1.0]  # exponential backoff, `retries` times per deal
    assert len(endpoint.requests) == 2 + 2 * 3
    with Store(store_location) as other:
        rows = list(other.db.query("SELECT deal_id, status, last_error FROM deal_pushes ORDER BY deal_id"))
    assert [r["status"] for r in rows] == ["sent", "sent", "failed", "failed"]
    assert "HTTP 500" in rows[2]["last_error"]

    endpoint.behave = lambda n, key: "ok"
    before = len(endpoint.requests)
    second = _push(store, endpoint.url)
    assert second.ok and second.up_to_date == 2 and second.sent == [k for k, _ in report.failed]
    new_keys = endpoint.keys()[before:]
    assert new_keys == second.sent  # only what was not acknowledged
    acknowledged = set(report.sent)
    assert not acknowledged & set(new_keys)  # never an acknowledged version again
    assert sorted(endpoint.accepted) == sorted(_deal_versions(store).values())


def test_a_lost_answer_is_retried_with_the_same_key(store, endpoint) -> None:
    endpoint.behave = lambda n, key: "drop" if n == 2 else "ok"
    report = _push(store, endpoint.url)
    assert report.ok and len(report.sent) == 4
    keys = endpoint.keys()
    assert len(keys) == 5 and keys[1] == keys[2]  # the server saw the same key again …
    assert len(endpoint.accepted) == 4  # … and kept the deal once


def test_retry_after_is_honoured_and_capped(store, endpoint) -> None:
    answers = {1: (429, {"Retry-After": "7"}), 2: (503, {"Retry-After": "3600"})}
    endpoint.behave = lambda n, key: answers.get(n, "ok")
    sleeps: list[float] = []
    report = _push(store, endpoint.url, sleeps, max_wait=30)
    assert report.ok and sleeps == [7.0, 30.0]


def test_a_client_error_is_not_retried_and_the_push_goes_on(store, endpoint) -> None:
    endpoint.behave = lambda n, key: 422 if n == 1 else "ok"
    report = _push(store, endpoint.url)
    assert [why for _, why in report.failed] == ["HTTP 422 Unprocessable Entity"]
    assert len(report.sent) == 3 and len(endpoint.requests) == 4


def test_a_redirect_is_not_followed(store, endpoint) -> None:
    endpoint.behave = lambda n, key: (308, {"Location": "https://elsewhere.test/deals"})
    report = _push(store, endpoint.url, retries=0)
    assert len(report.failed) == 4 and len(endpoint.requests) == 4
    assert "redirects to https://elsewhere.test/deals" in report.failed[0][1]


def test_an_unreachable_endpoint_fails_every_deal_and_the_next_push_sends_them(store, endpoint
                                                                                ) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/deals"
    report = _push(store, closed, retries=1)
    assert len(report.failed) == 4 and all("cannot reach" in why for _, why in report.failed)
    assert _push(store, endpoint.url).ok  # another endpoint is its own ledger
    assert store.registry.pushed_versions(closed) == {}


def test_a_bearer_token_is_sent_when_given(store, endpoint) -> None:
    _push(store, endpoint.url, token="s3cret")
    assert endpoint.requests[0][1]["Authorization"] == "Bearer s3cret"


def test_a_merged_deal_the_endpoint_knew_is_sent_as_merged(store, endpoint) -> None:
    _push(store, endpoint.url)
    with store.transaction():
        merge_deals(store, 1, 3)
    report = _push(store, endpoint.url)
    bodies = {key: body for key, _, body in endpoint.requests[4:]}
    merged = next(b for b in bodies.values() if b["deal_id"] == "dw-000003")
    assert merged == {"deal_id": "dw-000003", "version": store.registry.deal(3).version,
                      "merged_into": "dw-000001"}
    assert report.ok and len(report.sent) == 2  # the tombstone and the deal that grew


def test_only_http_urls(store) -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/", "registry.example.org",
                "http://registry.example.org:port/", "http://[::1/deals"):
        with pytest.raises(ExportError, match="http"):
            push_deals(store, url)


# --- the command ----------------------------------------------------------------------------


def test_export_push_command(store, endpoint, store_location, monkeypatch) -> None:
    monkeypatch.setenv("DEALWATCH_PUSH_TOKEN", "tok")

    def push():
        return CliRunner().invoke(main, ["--db", store_location, "export", "--push", endpoint.url,
                                         "--retries", "1", "--backoff", "0"])

    endpoint.behave = lambda n, key: "ok" if n <= 1 else 500
    failed = push()
    assert failed.exit_code == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: push to {endpoint.url}: 1 sent, 3 failed, 0 already up to date; run it again "
        "to send the rest")
    assert "not sent: dw-000002-v" in failed.stderr
    endpoint.behave = lambda n, key: "ok"
    done = push()
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"push to {endpoint.url}: 3 sent, 0 failed, 1 already up to date"
    assert endpoint.requests[-1][1]["Authorization"] == "Bearer tok"
    with Store(store_location) as s:
        logged = list(s.db.query("SELECT format, destination, deals FROM exports ORDER BY id"))
    assert logged == [{"format": "push", "destination": endpoint.url, "deals": 1},
                      {"format": "push", "destination": endpoint.url, "deals": 3}]
    mixed = CliRunner().invoke(main, ["--db", store_location, "export", "--push", endpoint.url,
                                      "--out", "x.csv"])
    assert mixed.exit_code == 2
