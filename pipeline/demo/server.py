"""A small local web server for the demo site and the test sites (127.0.0.1 only).

It serves a directory. Text files have `{{base}}` replaced by the server's base URL, so feeds
and sitemaps can hold absolute links whatever port the server got. Responses carry an ETag and
Last-Modified and answer conditional requests with 304, as real news sites do.

An optional `_routes.json` in the directory adds behaviour for tests:
    {"/old.html": {"status": 301, "location": "/new.html"},
     "/broken.html": {"status": 500},
     "/slow.html": {"delay": 3, "file": "article.html"},
     "/blob.bin": {"status": 200, "content_type": "application/octet-stream", "body": "..."},
     "/busy.html": {"status": 503, "headers": {"Retry-After": "1"}, "fail_times": 1}}
`headers` go with any route's answer. With `fail_times` N the route answers its status (and
headers) to the first N requests only, and then serves the file as if there were no route.
Every request is logged in `requests` (paths) and `log` (path, monotonic time, and the
conditional headers If-None-Match / If-Modified-Since it carried).

Run it by hand: python -m pipeline.demo.server DIR [--port N]   (prints the base URL)
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import logging
import mimetypes
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.dates import http_datetime

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".html", ".htm", ".xml", ".txt", ".json", ".rss", ".atom"}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class Logged:
    """One request the server saw."""

    path: str
    at: float  # time.monotonic()
    if_none_match: str | None = None
    if_modified_since: str | None = None

    @property
    def conditional(self) -> bool:
        return bool(self.if_none_match or self.if_modified_since)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Several spiders connect at once; socketserver's default backlog of 5 drops connections,
    # and clients then wait seconds to retry.
    request_queue_size = 128

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root).resolve()
        self.routes: dict[str, dict[str, Any]] = {}
        routes_file = self.root / "_routes.json"
        if routes_file.exists():
            self.routes = json.loads(routes_file.read_text(encoding="utf-8"))
        self.requests: list[str] = []  # paths requested, in order (tests count them)
        self.log: list[Logged] = []
        self.failures: dict[str, int] = {}  # fail_times routes: failed answers given so far
        self.lock = threading.Lock()
        super().__init__((host, port), SiteHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A crawler that stops reading a response (a size limit, a PDF it does not want)
        # resets the connection: routine for a crawl, no traceback wanted.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("siteserver: client %s closed the connection", client_address)
            return
        super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"


class SiteHandler(BaseHTTPRequestHandler):
    server: SiteServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("siteserver: " + format, *args)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _send(self, status: int, body: bytes, content_type: str | None,
              extra: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        route = self.server.routes.get(path)
        with self.server.lock:
            self.server.requests.append(self.path)
            self.server.log.append(Logged(self.path, time.monotonic(),
                                          self.headers.get("If-None-Match"),
                                          self.headers.get("If-Modified-Since")))
            if route and "fail_times" in route:
                failed = self.server.failures.get(path, 0)
                if failed >= int(route["fail_times"]):
                    route = None  # failed often enough: serve the file
                else:
                    self.server.failures[path] = failed + 1
        if route:
            time.sleep(float(route.get("delay", 0)))
            status = int(route.get("status", 200))
            if "location" in route:
                location = str(route["location"]).replace("{{base}}", self.server.base_url)
                self._send(status, b"", None, {**route.get("headers", {}), "Location": location},
                           head)
                return
            if "body" in route:
                body = str(route["body"]).replace("{{base}}", self.server.base_url).encode()
                self._send(status, body, route.get("content_type", "text/html; charset=utf-8"),
                           route.get("headers"), head)
                return
            if "file" in route:
                path = "/" + str(route["file"]).lstrip("/")
            elif status >= 400:
                self._send(status, f"error {status}".encode(), "text/plain", route.get("headers"),
                           head)
                return
        target = self._resolve(path)
        if target is None:
            self._send(404, b"not found", "text/plain; charset=utf-8", None, head)
            return
        body = target.read_bytes()
        if target.suffix in TEXT_SUFFIXES:
            body = body.replace(b"{{base}}", self.server.base_url.encode())
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        mtime = int(target.stat().st_mtime)
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified}
        if route and route.get("headers"):
            headers.update(route["headers"])
        if self._not_modified(etag, mtime):
            self._send(304, b"", None, headers, head=True)
            return
        content_type = CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
        self._send(200, body, content_type or "application/octet-stream", headers, head)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm:
            return etag in [t.strip() for t in inm.split(",")]
        ims = self.headers.get("If-Modified-Since")
        since = http_datetime(ims) if ims else None
        return since is not None and mtime <= since.timestamp()

    def _resolve(self, path: str) -> Path | None:
        rel = path.lstrip("/")
        candidate = (self.server.root / rel).resolve()
        if not candidate.is_relative_to(self.server.root):
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if candidate.name.startswith("_") or not candidate.is_file():
            return None
        return candidate


@contextmanager
def running(server: SiteServer) -> Iterator[SiteServer]:
    """Run a bound server in a background thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="siteserver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve(root: Path | str, host: str = "127.0.0.1", port: int = 0) -> Iterator[SiteServer]:
    """Serve a directory in a background thread for the duration of the block."""
    with running(SiteServer(Path(root), host, port)) as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a dealwatch demo or test site locally.")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = SiteServer(args.root, "127.0.0.1", args.port)
    print(server.base_url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
