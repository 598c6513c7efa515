"""App assembly and serving: the ReviewApp that takes a request to its handler, create_app, the server."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from models.errors import DealwatchError
from models.registry import parse_deal_number, parse_report_number, parse_row_id
from pipeline.config import Config, db_location, load_config
from pipeline.review.views import DEFAULT_HOST, DEFAULT_PORT
from pipeline.review.web.deals import DealRoutes
from pipeline.review.web.pages import STATIC_DIR, Ctx, Handler, Pages
from pipeline.review.web.queue import QueueRoutes
from pipeline.review.web.reports import ReportRoutes
from pipeline.review.web.security import (
    MAX_BODY_BYTES,
    MAX_FORM_FIELDS,
    MAX_LOGIN_BODY_BYTES,
    Auth,
    SecurityHeaders,
)
from pipeline.storage import Store, StoreError, is_busy
from pipeline.storage.database import DatabaseLocation, StoreConflict
from pipeline.urls import is_database_url

logger = logging.getLogger(__name__)

# Server connections a process keeps for its requests on PostgreSQL: fewer than the threads
# Starlette runs handlers in (anyio's 40), so that N processes stay well inside the server's
# max_connections (100 by default); a request past them waits up to the busy timeout.
WEB_CONNECTIONS = 10
# `dealwatch serve --workers N`: the Host headers each worker process accepts, "*" for any
# (--public); with DEALWATCH_CONFIG and DEALWATCH_DB, what worker_app builds its app from.
HOSTS_ENV = "DEALWATCH_SERVE_HOSTS"

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
NOT_FOUND = ("Not found", "There is nothing at this address.")
# How each path parameter names its row: a deal by its registry id (dw-000003) or number, a
# report by its name (rp-000001) or number.
PATH_IDS: dict[str, Callable[[str], int | None]] = {"deal_id": parse_deal_number,
                                                    "report_id": parse_report_number}
HTTP_ERRORS = {
    400: ("Bad request", "The form could not be read (forms here send a few fields and no files)."),
    404: NOT_FOUND,
    405: ("Not allowed", "That method is not allowed here."),
}


class ServeError(DealwatchError):
    """The review UI cannot be served as asked (address not allowed, …)."""


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ReviewApp:
    """The review UI's parts (pages, security, the queue's and the registry's routes) and how a
    request reaches a handler: its form read, a store opened, its session checked."""

    def __init__(self, config: Config, db_path: DatabaseLocation, secure_cookies: bool = True):
        self.config = config
        self.db_path = db_path
        self.pages = Pages(config)
        self.auth = Auth(self.pages, self.store, secure_cookies)
        self.queue = QueueRoutes(config, self.pages)
        self.deals = DealRoutes(config, self.pages, review_undo=self.queue.undo)
        self.reports = ReportRoutes(config, self.pages)
        if is_database_url(str(db_path)):
            from pipeline.storage.postgres import pool_connections  # psycopg only when needed

            # A store per request borrows one of this process's connections.
            pool_connections(str(db_path), WEB_CONNECTIONS,
                             config.settings.database.busy_timeout_ms)
        with self.store(migrate=True):
            pass  # fail now, not on the first request, when the database cannot be opened

    @contextmanager
    def store(self, migrate: bool = False) -> Iterator[Store]:
        store = Store(self.db_path, self.config.settings.database.busy_timeout_ms, migrate=migrate)
        try:
            yield store
        finally:
            store.close()

    def endpoint(self, handler: Handler, *, auth: bool = True
                 ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a synchronous handler: parse the form, then run the database work (and the
        slow password check) in a worker thread with its own connection."""

        async def run(request: Request) -> Response:
            form = None
            # A post that needs a session and has none is refused (403) unread. The login form
            # is read within MAX_LOGIN_BODY_BYTES; others within MAX_BODY_BYTES, no files and
            # a few fields (too many is a 400), before the CSRF check.
            if request.method == "POST" and (
                    not auth or await run_in_threadpool(self.auth.signed_in, request)):
                form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
            try:
                return await run_in_threadpool(self.dispatch, handler, request, form, auth)
            finally:
                if form is not None:
                    await form.close()

        return run

    def dispatch(self, handler: Handler, request: Request, form: FormData | None,
                 auth: bool) -> Response:
        ctx: Ctx | None = None
        try:
            with self.store() as store:
                ctx = Ctx(request, form, store, self.auth.session(store, request))
                # Path parameters are row ids (/candidate/{candidate_id}, /deal/dw-000003): one
                # that names no row in SQLite is not found, like a path that matches no route.
                ids = {name: PATH_IDS.get(name, parse_row_id)(value)
                       for name, value in request.path_params.items()}
                if None in ids.values():
                    return self.pages.error(ctx, 404, *NOT_FOUND)
                return self.auth.refusal(ctx, auth) or handler(ctx, **ids)
        except Exception as exc:
            if isinstance(exc, StoreConflict) or not (isinstance(exc, StoreError) or is_busy(exc)):
                raise
            # A write waited the whole busy timeout for another writer (a reviewer, the nightly
            # run), or the database could not be reached: the request's transaction never
            # committed, so nothing of it was written.
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
            if is_busy(exc):
                title, message = "Database busy", "The database is busy; try again in a moment."
            else:  # a server lost or refusing, a file that cannot be opened: the log says which
                title, message = ("Database unavailable", "The database cannot be reached; try "
                                  "again in a moment.")
            return self.pages.error(ctx, 503, title, message, headers={"retry-after": "5"})

    def help(self, ctx: Ctx) -> Response:
        return self.pages.render(ctx, "help.html")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """The page for what the router or the form parser refuses (no session here)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        title, message = HTTP_ERRORS.get(status, NOT_FOUND)
        html = self.pages.env.get_template("error.html").render(
            user="", csrf_token="", flashes=[], here="/", title=title, message=message)
        return HTMLResponse(html, status_code=status)


def create_app(config: Config, db_path: DatabaseLocation, *, secure_cookies: bool = True,
               allowed_hosts: list[str] | None = None) -> Starlette:
    """The review web app. secure_cookies=False only for tests over plain http (TestClient);
    allowed_hosts: Host header values to accept (None: any)."""
    web = ReviewApp(config, db_path, secure_cookies)
    e, auth, queue, deals, reports = web.endpoint, web.auth, web.queue, web.deals, web.reports
    routes = [
        Route("/", e(queue.home)),
        Route("/login", e(auth.login_form, auth=False), methods=["GET"]),
        Route("/login", e(auth.login, auth=False), methods=["POST"],
              max_body_size=MAX_LOGIN_BODY_BYTES),
        Route("/logout", e(auth.logout), methods=["POST"]),
        Route("/queue", e(queue.queue)),
        Route("/help", e(web.help)),
        Route("/candidate/{candidate_id}", e(queue.candidate)),
        Route("/candidate/{candidate_id}/decide", e(queue.decide), methods=["POST"]),
        Route("/candidate/{candidate_id}/edit", e(queue.edit), methods=["POST"]),
        Route("/bulk-reject", e(queue.bulk_reject), methods=["POST"]),
        # the reviewer's last change: a review decision or a registry correction
        Route("/undo", e(deals.undo), methods=["POST"]),
        Route("/deals", e(deals.deals)),
        Route("/deals/undo", e(deals.undo_correction), methods=["POST"]),
        Route("/deal/{deal_id}", e(deals.deal)),
        Route("/deal/{deal_id}/edit", e(deals.edit), methods=["POST"]),
        Route("/deal/{deal_id}/merge", e(deals.merge_form), methods=["GET"]),
        Route("/deal/{deal_id}/merge", e(deals.merge), methods=["POST"]),
        Route("/deal/{deal_id}/split", e(deals.split), methods=["POST"]),
        Route("/deal/{deal_id}/official", e(deals.source_official), methods=["POST"]),
        Route("/reports", e(reports.reports)),
        Route("/report/{report_id}", e(reports.report)),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    # Bodies past the limit are refused (413, Starlette's plain "Content Too Large") inside
    # SecurityHeaders, so that answer carries the headers too.
    middleware = [Middleware(SecurityHeaders),
                  Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)]
    if allowed_hosts is not None:
        # A page on another site that rebinds its DNS name to 127.0.0.1 reaches us with its
        # own Host header: refuse it.
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={status: web.http_error for status in HTTP_ERRORS})
    app.state.review = web
    return app


def check_bind(host: str, allow_public: bool) -> None:
    if not is_loopback(host) and not allow_public:
        raise ServeError(f"refusing to serve on {host}: it is not a loopback address; pass "
                         "--public to let other machines reach the review UI (put HTTPS in front)")


def run_server(config: Config, db_path: DatabaseLocation, host: str = DEFAULT_HOST,
               port: int = DEFAULT_PORT, allow_public: bool = False, workers: int = 1) -> None:
    """Serve the review UI until Ctrl-C. Only loopback unless allow_public. workers: processes
    answering on the one address (uvicorn's supervisor binds it and starts them), each with its
    own app and connections; whichever serves a request, the sessions, forms' CSRF tokens,
    flashes and decisions are in the database."""
    import uvicorn

    check_bind(host, allow_public)
    allowed_hosts = None if allow_public else [*LOOPBACK_NAMES, host]
    # Migrated here, before any worker starts, so that they find nothing left to do.
    with Store(db_path, config.settings.database.busy_timeout_ms, migrate=True) as store:
        if not store.accounts.users():
            logger.warning("no reviewer accounts yet: create one with `dealwatch user add NAME`")
    if allow_public:
        # Form posts must carry an Origin of the host the browser sees: a proxy that rewrites
        # Host (nginx does, unless told otherwise) makes every form look like another site's.
        logger.warning("serving on %s for other machines: session cookies are Secure, so "
                       "browsers keep them only over HTTPS — put a TLS proxy in front that "
                       "passes the Host header on (nginx: `proxy_set_header Host $host;`)", host)
    options: dict[str, Any] = {"host": host, "port": port, "proxy_headers": allow_public,
                               "server_header": False, "log_level": "info"}
    if workers == 1:
        uvicorn.run(create_app(config, db_path, allowed_hosts=allowed_hosts), **options)
        return
    # Each worker is a new Python (spawned), which rebuilds the app from the environment: the
    # database URL, password and all, passes there, never on a command line.
    os.environ["DEALWATCH_CONFIG"] = str(config.directory)
    os.environ["DEALWATCH_DB"] = str(db_path)
    os.environ[HOSTS_ENV] = "*" if allowed_hosts is None else ",".join(allowed_hosts)
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)


def worker_app() -> Starlette:
    """The app of one `dealwatch serve --workers N` process (uvicorn's factory), from what
    run_server left in the environment: the config directory, the database, the hosts."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config()
    hosts = os.environ.get(HOSTS_ENV, ",".join(LOOPBACK_NAMES))
    return create_app(config, db_location(None, config.settings),
                      allowed_hosts=None if hosts == "*" else hosts.split(","))


@contextmanager
def running_server(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve an app from a background thread (tests, screenshots); yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="dealwatch-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServeError("the review UI did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
