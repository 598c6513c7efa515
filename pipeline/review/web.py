"""The review web UI (`dealwatch serve`): server-rendered pages over the CLI's review functions."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import ipaddress
import itertools
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.config import COUNTERPART_TYPES, DEAL_TYPES, STAGES
from models.errors import DealwatchError
from pipeline.config import Config
from pipeline.language import normalise_language
from pipeline.review import accounts, present, registry
from pipeline.review import decisions as review
from pipeline.storage.registry_store import QueueQuery
from pipeline.storage.store import CANDIDATE_STATUSES, Store, StoreError, is_busy

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

PAGE_SIZE = 50
# Forms are small: the biggest, bulk reject, sends one pick a queue row. No form takes files.
MAX_FORM_FIELDS = 4 * PAGE_SIZE
# Request bodies past these sizes are refused (413) before they are read: Starlette's body
# limit checks Content-Length first, then counts what arrives (chunked bodies).
MAX_BODY_BYTES = 256 * 1024  # every route: the biggest form is a few kilobytes
MAX_LOGIN_BODY_BYTES = 8 * 1024  # the login form: a name, a password, its token, where to go
MAX_ROW_ID = 2**63  # SQLite integers are signed 64-bit: a larger id overflows, it names no row
SESSION_TTL = 12 * 3600  # a working day; after it the reviewer logs in again
LOGIN_WINDOW = 15 * 60
LOGIN_LIMIT = 5  # failed logins per name or per address within LOGIN_WINDOW
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # Article links lead to third-party sites: they learn nothing about the review UI. Not
    # "no-referrer": with it, browsers send `Origin: null` on our own form posts.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

REASON_LABELS = {code: code.replace("_", " ").capitalize() for code in review.REJECT_REASONS}
# The fields a reviewer edits in the form, in the order shown (review.EDITABLE_FIELDS also has
# the list forms, which follow the first vendor and type).
FORM_FIELDS = ("vendor", "country", "counterpart", "counterpart_type", "deal_type", "stage",
               "value", "currency", "year")
ENTITY_CLASSES = {"VENDOR": "vendor", "COUNTRY": "country", "AGENCY": "agency", "ORG": "org"}
# The statistical model's labels (DATE, MONEY, PERSON, …) are many; the page shows them on request.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NOT_FOUND = ("Not found", "There is nothing at this address.")
HTTP_ERRORS = {
    400: ("Bad request", "The form could not be read (forms here send a few fields and no files)."),
    404: NOT_FOUND,
    405: ("Not allowed", "That method is not allowed here."),
}


class ServeError(DealwatchError):
    """The review UI cannot be served as asked (address not allowed, …)."""


# --- pure helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A run of article text with one look: inside the evidence or not, inside an entity or not."""

    text: str
    evidence: bool = False
    label: str | None = None
    ent_id: str | None = None
    anchor: bool = False  # the first evidence segment: where the page scrolls to

    @property
    def css(self) -> str:
        classes = ["ev"] if self.evidence else []
        if self.label:
            classes += ["ent", "ent-" + ENTITY_CLASSES.get(self.label, "extra")]
        return " ".join(classes)


def _row_id(value: str) -> int | None:
    """A row id or version from a URL or a form: ASCII digits below 2**63, else None."""
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 19:
        return None  # (a long string of digits would take int() a while, then overflow SQLite)
    number = int(value)
    return number if number < MAX_ROW_ID else None


def article_segments(text: str, evidence: tuple[int, int] | None,
                     entities: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """Split an article into segments for highlighting. The template escapes each segment's
    text, so scraped markup never reaches the page as markup."""
    n = len(text)
    spans = [(int(e["start"]), int(e["end"]), e) for e in entities
             if 0 <= int(e["start"]) < int(e["end"]) <= n]
    cuts = {0, n}
    if evidence:
        cuts.update(evidence)
    for s, e, _ in spans:
        cuts.update((s, e))
    bounds = sorted(c for c in cuts if 0 <= c <= n)
    # One sweep: entities join `covering` as the cuts pass their start and leave (lazily, when
    # on top) once past their end. Overlapping entities (e.g. an ORG inside a longer AGENCY):
    # the longest one wins, then the later one.
    by_start = sorted(range(len(spans)), key=lambda i: spans[i][0])
    covering: list[tuple[int, int, int]] = []  # heap of (-length, -index, end)
    joined = 0
    runs: list[list[Any]] = []  # [start, end, evidence, which entity, anchor]
    anchored = False
    for left, right in itertools.pairwise(bounds):
        while joined < len(by_start) and spans[by_start[joined]][0] <= left:
            i = by_start[joined]
            heapq.heappush(covering, (spans[i][0] - spans[i][1], -i, spans[i][1]))
            joined += 1
        while covering and covering[0][2] <= left:
            heapq.heappop(covering)
        which = -covering[0][1] if covering else -1
        inside = bool(evidence and evidence[0] <= left and right <= evidence[1])
        anchor = inside and not anchored
        anchored = anchored or inside
        if runs and not anchor and runs[-1][2:4] == [inside, which]:
            runs[-1][1] = right  # equal neighbours merge
        else:
            runs.append([left, right, inside, which, anchor])
    out: list[Segment] = []
    for left, right, inside, which, anchor in runs:
        ent = spans[which][2] if which >= 0 else None
        out.append(Segment(text[left:right], inside, ent["label"] if ent else None,
                           ent.get("ent_id") if ent else None, anchor))
    return out


def paragraphs(segments: Iterable[Segment]) -> list[list[Segment]]:
    """Segments grouped into the article's paragraphs (its lines), for <p> elements; the
    newlines themselves are dropped and a segment spanning one is cut in two."""
    out: list[list[Segment]] = [[]]
    for seg in segments:
        anchor = seg.anchor  # goes with the first piece that has text
        for i, line in enumerate(seg.text.split("\n")):
            if i:
                out.append([])
            if line:
                out[-1].append(replace(seg, text=line, anchor=anchor))
                anchor = False
    return [p for p in out if any(s.text.strip() for s in p)]


def parse_queue_query(params: Mapping[str, str]) -> QueueQuery:
    """The queue's filters from a query string; values that cannot match are dropped."""
    status: str | None = params.get("status") or "pending"
    if status == "all":
        status = None
    elif status not in CANDIDATE_STATUSES:
        status = "pending"

    def pick(name: str, allowed: Iterable[str] | None = None) -> str | None:
        value = (params.get(name) or "").strip()
        if not value or len(value) > 200:
            return None
        return value if allowed is None or value in allowed else None

    country = pick("country")
    language = normalise_language(pick("lang"))
    date_from, date_to = pick("from"), pick("to")
    min_score = _score_param(pick("min_score"))
    return QueueQuery(
        status=status, kind=pick("kind", ("deal", "aggregate")), vendor=pick("vendor"),
        country=country.upper() if country else None, deal_type=pick("deal_type", DEAL_TYPES),
        stage=pick("stage", STAGES), source=pick("source"), language=language,
        date_from=date_from if date_from and _DATE.match(date_from) else None,
        date_to=date_to if date_to and _DATE.match(date_to) else None,
        hidden=params.get("scores") == "all" or min_score is not None, min_score=min_score)


def _score_param(value: str | None) -> float | None:
    """A score filter from a query string: a number from 0 to 1, else none."""
    try:
        score = float(value) if value else None
    except ValueError:
        return None
    return score if score is not None and 0 <= score <= 1 else None


def queue_params(query: QueueQuery) -> dict[str, str]:
    """The query-string form of a QueueQuery (defaults left out)."""
    out: dict[str, str] = {}
    if query.status != "pending":
        out["status"] = query.status or "all"
    for name, value in (("kind", query.kind), ("vendor", query.vendor),
                        ("country", query.country), ("deal_type", query.deal_type),
                        ("stage", query.stage), ("source", query.source),
                        ("lang", query.language), ("from", query.date_from),
                        ("to", query.date_to)):
        if value:
            out[name] = value
    if query.min_score is not None:
        out["min_score"] = f"{query.min_score:g}"
    elif query.hidden:
        out["scores"] = "all"
    return out


def with_query(path: str, query: str | Mapping[str, str]) -> str:
    qs = query if isinstance(query, str) else urlencode(query)
    return f"{path}?{qs}" if qs else path


def format_cursor(row: Mapping[str, Any]) -> str:
    return f"{float(row['score'])!r}:{int(row['id'])}"


def parse_cursor(value: str | None) -> tuple[float, int] | None:
    """A queue position from `after=`/`before=` ("score:id"); None for anything else."""
    score_text, _, ident_text = (value or "").partition(":")
    ident = _row_id(ident_text)
    try:
        score = float(score_text)
    except ValueError:
        return None
    return (score, ident) if ident is not None and math.isfinite(score) else None


def plain(value: Any) -> str:
    """A field value as a form shows it (17500000000.0 → 17500000000, None → '')."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:g}"
    return str(value)


def reason_label(code: str | None) -> str:
    """A rejection reason as the page shows it ("not_a_deal" → "Not a deal")."""
    return REASON_LABELS.get(code or "", code or "")


def safe_url(url: Any) -> str | None:
    """A scraped URL fit for an href: http(s) only (javascript:, data: and the rest are shown
    as text)."""
    if not isinstance(url, str):
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


def local_path(target: str | None, default: str = "/queue") -> str:
    """A redirect target that stays on this site (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def changed_edits(form: Mapping[str, Any], candidate: Mapping[str, Any]) -> dict[str, str]:
    """The edit fields whose submitted value differs from the candidate's: only those are
    written, so an untouched field keeps its exact stored value (and its list form)."""
    edits: dict[str, str] = {}
    for name in FORM_FIELDS:
        if name in form:
            value = str(form[name]).strip()
            if value != plain(candidate.get(name)):
                edits[name] = value
    return edits


# --- the app --------------------------------------------------------------------------------


@dataclass
class Ctx:
    """One request as a handler sees it: the parsed form, an open store, the reviewer."""

    request: Request
    form: FormData | None
    store: Store
    session: dict[str, Any] | None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def user(self) -> str:
        return str(self.session["user_name"]) if self.session else ""

    def field(self, name: str, default: str = "", strip: bool = True) -> str:
        value = self.form.get(name) if self.form is not None else None
        if not isinstance(value, str):
            return default
        return value.strip() if strip else value

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    def queue_filters(self) -> tuple[QueueQuery, str]:
        """The queue this request works in and its query string: a form carries it in its
        `filters` field, a page in its own query string."""
        params: Mapping[str, str] = (dict(parse_qsl(self.field("filters")))
                                     if self.form is not None else self.request.query_params)
        query = parse_queue_query(params)
        return query, urlencode(queue_params(query))


Handler = Callable[..., Response]


class SecurityHeaders:
    """Adds the security headers to every response, errors and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not static:
                    # Pages hold a reviewer's data and tokens: never keep them in a cache.
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ReviewApp:
    """Routes and the state they share (templates, the database path, flash messages)."""

    def __init__(self, config: Config, db_path: Path, secure_cookies: bool = True):
        self.config = config
        self.db_path = Path(db_path)
        self.secure = secure_cookies
        # __Host- cookies are only accepted with Secure, Path=/ and no Domain: a sibling host
        # cannot plant or read them.
        self.session_cookie = "__Host-dealwatch" if secure_cookies else "dealwatch_session"
        self.login_cookie = "__Host-dealwatch-login" if secure_cookies else "dealwatch_login"
        self.vendor_names = {e.id: e.name for e in config.watchlist if e.type == "vendor"}
        self.vendor_ids = config.vendor_ids()
        self.vendor_options = sorted(self.vendor_names.items(), key=lambda kv: kv[1].lower())
        self.country_options = sorted(present.country_names().items())
        self.flash_lock = threading.Lock()
        self.flash_store: dict[str, list[tuple[str, str]]] = {}
        self.options_cache: tuple[float, dict[str, Any]] | None = None
        self.asset_version = hashlib.sha256(b"".join(
            p.read_bytes() for p in sorted(STATIC_DIR.iterdir()) if p.is_file())).hexdigest()[:10]
        # auto_reload=False: templates are read once, not checked on disk on every page.
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, auto_reload=False,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(plain=plain, money=partial(present.money, short=True),
                                safe_url=safe_url, vendor=self.vendor_name,
                                country=self.country_name, reason=reason_label,
                                language=lambda code: present.language_name(code) or code,
                                language_note=present.language_note,
                                when=lambda t: (t or "").replace("T", " ").rstrip("Z"),
                                score_class=lambda s: "hi" if s >= 0.8 else "mid" if s >= 0.6
                                else "lo")
        self.env.globals.update(
            REASON_LABELS=REASON_LABELS, ENTITY_CLASSES=ENTITY_CLASSES, DEAL_TYPES=DEAL_TYPES,
            STAGES=STAGES, COUNTERPART_TYPES=COUNTERPART_TYPES, STATUSES=CANDIDATE_STATUSES,
            asset=lambda name: f"/static/{name}?v={self.asset_version}")
        with self.store(migrate=True):
            pass  # fail now, not on the first request, when the database cannot be opened

    # -- plumbing --

    @contextmanager
    def store(self, migrate: bool = False) -> Iterator[Store]:
        store = Store(self.db_path, self.config.settings.database.busy_timeout_ms, migrate=migrate)
        try:
            yield store
        finally:
            store.close()

    def vendor_name(self, vendor_id: str | None) -> str:
        return self.vendor_names.get(vendor_id or "", vendor_id or "")

    def country_name(self, code: str | None) -> str:
        return present.country_name(code) or code or ""

    def render(self, ctx: Ctx | None, template: str, status: int = 200,
               headers: Mapping[str, str] | None = None, **values: Any) -> HTMLResponse:
        session = ctx.session if ctx else None
        flashes = self.take_flashes(session["id"]) if session else []
        html = self.env.get_template(template).render(
            user=ctx.user if ctx else "", csrf_token=session["csrf_token"] if session else "",
            flashes=[*flashes, *(ctx.flashes if ctx else [])],
            here=str(ctx.request.url.path) + ("?" + ctx.request.url.query
                                              if ctx.request.url.query else "") if ctx else "/",
            **values)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def error(self, ctx: Ctx | None, status: int, title: str, message: str,
              headers: Mapping[str, str] | None = None) -> HTMLResponse:
        return self.render(ctx, "error.html", status=status, headers=headers, title=title,
                           message=message)

    def flash(self, ctx: Ctx, kind: str, text: str) -> None:
        if ctx.session:
            with self.flash_lock:
                self.flash_store.setdefault(ctx.session["id"], []).append((kind, text))

    def take_flashes(self, session_id: str) -> list[tuple[str, str]]:
        with self.flash_lock:
            return self.flash_store.pop(session_id, [])

    def cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=True, samesite="strict")

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
                    not auth or await run_in_threadpool(self.signed_in, request)):
                form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
            try:
                return await run_in_threadpool(self.dispatch, handler, request, form, auth)
            finally:
                if form is not None:
                    await form.close()

        return run

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries a live session (dispatch checks it again)."""
        sid = request.cookies.get(self.session_cookie)
        if not sid:
            return False
        try:
            with self.store() as store:
                return store.session(sid) is not None
        except (StoreError, sqlite3.OperationalError):
            return True  # let dispatch say what is wrong with the database

    def dispatch(self, handler: Handler, request: Request, form: FormData | None,
                 auth: bool) -> Response:
        ctx: Ctx | None = None
        try:
            with self.store() as store:
                sid = request.cookies.get(self.session_cookie)
                ctx = Ctx(request, form, store, store.session(sid) if sid else None)
                # Path parameters are row ids (/candidate/{candidate_id}): one that names no
                # row in SQLite is not found, like a path that matches no route.
                ids = {name: _row_id(value) for name, value in request.path_params.items()}
                if None in ids.values():
                    return self.error(ctx, 404, *NOT_FOUND)
                return self.refusal(ctx, auth) or handler(ctx, **ids)
        except (StoreError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not is_busy(exc):
                raise
            # A write waited the whole busy timeout for another writer (a reviewer, the nightly
            # run): its transaction never began, so nothing of this request was written.
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return self.error(ctx, 503, "Database busy", "The database is busy; try again in "
                              "a moment.", headers={"retry-after": "5"})

    def refusal(self, ctx: Ctx, auth: bool) -> Response | None:
        """Why this request may not run the handler (no login, another site, no CSRF token)."""
        request = ctx.request
        if auth and ctx.session is None:
            if request.method == "GET":
                target = request.url.path + ("?" + request.url.query if request.url.query
                                             else "")
                return RedirectResponse("/login?" + urlencode({"next": target}), 303)
            return self.error(ctx, 403, "Not logged in",
                              "Your session has ended. Log in again, then repeat the action.")
        if request.method == "POST":
            if not self.same_origin(request):
                logger.warning("refused a %s to %s from Origin %s for Host %s (behind a proxy? "
                               "it must pass the Host header on: nginx `proxy_set_header Host "
                               "$host;`)", request.method, request.url.path,
                               request.headers.get("origin"), request.headers.get("host"))
                return self.error(ctx, 403, "Refused", "This form was sent from another site.")
            if auth and ctx.session is not None and not hmac.compare_digest(
                    ctx.field("csrf_token").encode(), str(ctx.session["csrf_token"]).encode()):
                return self.error(ctx, 403, "Refused: missing or stale form token",
                                  "Every change needs the form token of your session (CSRF "
                                  "protection). Reload the page and try again.")
        return None

    @staticmethod
    def same_origin(request: Request) -> bool:
        """Browsers send Origin on POSTs; when there is one it must be this site."""
        origin = request.headers.get("origin")
        if not origin:
            return True
        if origin == "null":
            return False
        return urlsplit(origin).netloc == request.headers.get("host", "")

    def filter_options(self, store: Store) -> dict[str, Any]:
        """Values for the filter menus; cached for a minute (DISTINCT over 100k rows adds up)."""
        now = time.monotonic()
        if self.options_cache and now - self.options_cache[0] < 60:
            return self.options_cache[1]
        options = {
            "vendors": self.vendor_options,
            "countries": [(c, f"{self.country_name(c)} ({c})") for c in store.candidate_countries()],
            "sources": [(s, s) for s in store.source_ids()],
            "languages": [(code, f"{present.language_name(code) or code} ({code})")
                          for code in store.candidate_languages()],
            "deal_types": [(t, t.replace("_", " ")) for t in DEAL_TYPES],
            "stages": [(s, s.replace("_", " ")) for s in STAGES],
            "kinds": [("deal", "deal"), ("aggregate", "aggregate")],
        }
        self.options_cache = (now, options)
        return options

    # -- login --

    def login_form(self, ctx: Ctx) -> Response:
        if ctx.session:
            return RedirectResponse(local_path(ctx.request.query_params.get("next")), 303)
        return self.login_page(ctx, ctx.request.query_params.get("next", ""))

    def login_page(self, ctx: Ctx, next_url: str, error: str = "", status: int = 200,
                   name: str = "", headers: Mapping[str, str] | None = None) -> Response:
        token = ctx.request.cookies.get(self.login_cookie) or secrets.token_urlsafe(32)
        response = self.render(ctx, "login.html", status=status, headers=headers,
                               login_token=token, next_url=local_path(next_url), error=error,
                               name=name)
        self.cookie(response, self.login_cookie, token, 3600)
        return response

    def login(self, ctx: Ctx) -> Response:
        next_url = ctx.field("next")
        cookie = ctx.request.cookies.get(self.login_cookie, "")
        # No session yet: the login form's token must match its cookie (double submit), so
        # another site cannot log a reviewer into an account of its choosing.
        if not cookie or not hmac.compare_digest(ctx.field("csrf_token").encode(), cookie.encode()):
            return self.error(ctx, 403, "Refused: missing or stale form token",
                              "Reload the login page and try again.")
        name, password = ctx.field("name"), ctx.field("password", strip=False)
        address = ctx.request.client.host if ctx.request.client else "unknown"
        if ctx.store.login_failures(name, address, LOGIN_WINDOW) >= LOGIN_LIMIT:
            logger.warning("login refused for %r from %s: too many failures", name, address)
            return self.login_page(
                ctx, next_url, status=429, name=name, headers={"retry-after": str(LOGIN_WINDOW)},
                error=f"Too many failed logins for this name or from this address. Wait "
                      f"{LOGIN_WINDOW // 60} minutes and try again.")
        user = accounts.authenticate(ctx.store, name, password)
        if user is None:
            ctx.store.record_login_failure(name, address)
            logger.info("failed login for %r from %s", name, address)
            return self.login_page(ctx, next_url, status=401, name=name,
                                   error="Wrong name or password.")
        ctx.store.clear_login_failures(name)
        session = ctx.store.create_session(int(str(user["id"])), SESSION_TTL)
        response = RedirectResponse(local_path(next_url), 303)
        self.cookie(response, self.session_cookie, session["id"], SESSION_TTL)
        response.delete_cookie(self.login_cookie, path="/", secure=self.secure, httponly=True,
                               samesite="strict")
        logger.info("%s logged in from %s", name, address)
        return response

    def logout(self, ctx: Ctx) -> Response:
        assert ctx.session is not None
        ctx.store.delete_session(ctx.session["id"])
        response = RedirectResponse("/login", 303)
        response.delete_cookie(self.session_cookie, path="/", secure=self.secure, httponly=True,
                               samesite="strict")
        return response

    # -- the queue --

    def home(self, ctx: Ctx) -> Response:
        return RedirectResponse("/queue", 303)

    def queue(self, ctx: Ctx) -> Response:
        params = ctx.request.query_params
        query, filters_qs = ctx.queue_filters()
        after, before = parse_cursor(params.get("after")), parse_cursor(params.get("before"))
        rows: list[dict[str, Any]] = []
        with ctx.store.snapshot():  # the rows and the counts of one moment
            if before is not None and after is None:
                rows = ctx.store.queue_page(query, PAGE_SIZE + 1, before=before)
                has_prev, has_next = len(rows) > PAGE_SIZE, True
                rows = rows[-PAGE_SIZE:]
                if not has_prev:
                    before = None  # back at the top: show a full first page
            if before is None:
                rows = ctx.store.queue_page(query, PAGE_SIZE + 1, after=after)
                has_prev, has_next = after is not None, len(rows) > PAGE_SIZE
                rows = rows[:PAGE_SIZE]
            ctx.store.attach_copies(rows)
            counts = ctx.store.queue_status_counts(query)
            hidden_count = 0 if query.hidden or query.status not in ("pending", None) else (
                ctx.store.queue_status_counts(replace(query, hidden=True)).get("pending", 0)
                - counts.get("pending", 0))
        base = queue_params(query)
        return self.render(
            ctx, "queue.html", rows=rows, query=query, filters=base,
            hidden_count=hidden_count, threshold=self.config.rules.scoring.threshold,
            scores_url=with_query("/queue", queue_params(
                replace(query, hidden=not query.hidden, min_score=None))),
            filters_qs=filters_qs, counts=counts, total=sum(counts.values()),
            options=self.filter_options(ctx.store),
            status_url=lambda status: with_query("/queue", queue_params(
                replace(query, status=None if status == "all" else status))),
            prev_url=with_query("/queue", {**base, "before": format_cursor(rows[0])})
            if has_prev and rows else None,
            next_url=with_query("/queue", {**base, "after": format_cursor(rows[-1])})
            if has_next and rows else None,
            first_url=with_query("/queue", base) if has_prev else None,
            page_cursor={k: v for k, v in (("after", params.get("after")),
                                           ("before", params.get("before"))) if v})

    # -- one candidate --

    def candidate_page(self, ctx: Ctx, candidate_id: int, *, status: int = 200,
                       conflict: str = "", error: str = "",
                       values: Mapping[str, str] | None = None) -> Response:
        with ctx.store.snapshot():  # the candidate, its neighbours and its history of one moment
            cand = ctx.store.candidate(candidate_id)
            if cand is None:
                return self.error(ctx, 404, "No such candidate",
                                  f"There is no candidate #{candidate_id}.")
            query, filters_qs = ctx.queue_filters()
            entities = ctx.store.entities_of(cand["article_id"])
            ctx.store.attach_copies([cand])
            group = ctx.store.cluster_group(cand)
            cursor = (float(cand["score"]), int(cand["id"]))
            nxt = ctx.store.queue_page(query, 1, after=cursor)
            prev = ctx.store.queue_page(query, 1, before=cursor)
            # A confirmed candidate's own deal is no suggestion: confirming again refiles it.
            suggestions = [s for s in registry.suggest_deals(ctx.store, cand)
                           if s.deal["id"] != cand.get("deal_id")]
            history = ctx.store.reviews_of(cand["id"])
            deal = ctx.store.deal(cand["deal_id"]) if cand.get("deal_id") else None
        text = cand["article_text"] or ""
        span = present.evidence_span(text, cand["sentence"], cand.get("start"), cand.get("end"))
        labels = {e["label"] for e in entities}
        form_values = {name: plain(cand.get(name)) for name in FORM_FIELDS}
        form_values.update(values or {})
        return self.render(
            ctx, "candidate.html", status=status, c=cand, conflict=conflict, error=error,
            paragraphs=paragraphs(article_segments(text, span, entities)),
            evidence_found=span is not None,
            entity_labels=[label for label in ENTITY_CLASSES if label in labels],
            extra_labels=sorted(labels - set(ENTITY_CLASSES)),
            copies=cand["copies"], group=[g["id"] for g in group], history=history,
            suggestions=suggestions, deal=deal, values=form_values, filters_qs=filters_qs,
            queue_url=with_query("/queue", filters_qs),
            next_url=with_query(f"/candidate/{nxt[0]['id']}", filters_qs) if nxt else None,
            prev_url=with_query(f"/candidate/{prev[0]['id']}", filters_qs) if prev else None,
            vendor_options=self.vendor_options, countries=self.country_options,
            edit_open=bool(values) or bool(error))

    def candidate(self, ctx: Ctx, candidate_id: int) -> Response:
        return self.candidate_page(ctx, candidate_id)

    def decide(self, ctx: Ctx, candidate_id: int) -> Response:
        decision = ctx.field("decision")
        cand = ctx.store.candidate(candidate_id)
        if cand is None:
            return self.error(ctx, 404, "No such candidate", f"There is no candidate #{candidate_id}.")
        version = _row_id(ctx.field("version"))
        if version is None:
            return self.no_version(ctx)
        edits = changed_edits(ctx.form or {}, cand)
        reason = ctx.field("reason") or None
        if decision == "reject" and reason is None:
            return self.candidate_page(ctx, candidate_id, status=400, values=edits,
                                       error="Choose a reason for the rejection.")
        deal_choice = ctx.field("deal", "auto")
        deal_id = "new" if deal_choice == "new" else _row_id(deal_choice)  # else: the best match
        try:
            outcome = review.decide(
                ctx.store, candidate_id, decision, ctx.user, version=version,
                reason=reason if decision == "reject" else None,
                note=ctx.field("note") or None, edits=edits,
                deal_id=deal_id if decision == "confirm" else None,
                known_vendors=self.vendor_ids)
        except review.ConflictError as exc:
            logger.info("conflict for %s on #%d: %s", ctx.user, candidate_id, exc)
            return self.candidate_page(ctx, candidate_id, status=409, conflict=str(exc))
        except (review.ReviewError, registry.RegistryError) as exc:
            return self.candidate_page(ctx, candidate_id, status=400, values=edits, error=str(exc))
        copies = len(outcome.candidate_ids) - 1
        text = f"#{candidate_id} {outcome.status}" + (
            f" with {copies} {'copy' if copies == 1 else 'copies'}" if copies else "")
        if outcome.deal_id:
            deal = ctx.store.deal(outcome.deal_id)
            text += f", filed under deal {deal['deal_id'] if deal else outcome.deal_id}"
        if decision == "reject" and reason:
            text += f" ({reason_label(reason)})"
        self.flash(ctx, "ok", text + ". Press u to undo.")
        query, filters_qs = ctx.queue_filters()
        if ctx.field("return") == "queue":
            page = {k: v for k, v in parse_qsl(ctx.field("page")) if k in ("after", "before")}
            return RedirectResponse(with_query("/queue", {**queue_params(query), **page}), 303)
        # Advance: the next entry of the same queue after this one, else the top of it.
        cursor = (float(cand["score"]), int(cand["id"]))
        nxt = ctx.store.queue_page(query, 1, after=cursor) or ctx.store.queue_page(query, 1)
        if nxt:
            return RedirectResponse(with_query(f"/candidate/{nxt[0]['id']}", filters_qs), 303)
        self.flash(ctx, "info", "Nothing left in this queue.")
        return RedirectResponse(with_query("/queue", filters_qs), 303)

    def edit(self, ctx: Ctx, candidate_id: int) -> Response:
        cand = ctx.store.candidate(candidate_id)
        if cand is None:
            return self.error(ctx, 404, "No such candidate", f"There is no candidate #{candidate_id}.")
        version = _row_id(ctx.field("version"))
        if version is None:
            return self.no_version(ctx)
        edits = changed_edits(ctx.form or {}, cand)
        note = ctx.field("note") or None
        if not edits and note is None:
            self.flash(ctx, "info", "Nothing changed.")
        else:
            try:
                review.edit(ctx.store, candidate_id, ctx.user, edits, version=version, note=note,
                            known_vendors=self.vendor_ids)
            except review.ConflictError as exc:
                return self.candidate_page(ctx, candidate_id, status=409, conflict=str(exc))
            except review.ReviewError as exc:
                return self.candidate_page(ctx, candidate_id, status=400, values=edits,
                                           error=str(exc))
            self.flash(ctx, "ok", f"Saved your changes to #{candidate_id} (not decided yet).")
        _, filters_qs = ctx.queue_filters()
        return RedirectResponse(with_query(f"/candidate/{candidate_id}", filters_qs), 303)

    def no_version(self, ctx: Ctx) -> Response:
        return self.error(ctx, 400, "Bad request", "The form has no candidate version: reload "
                          "the page and try again.")

    def bulk_reject(self, ctx: Ctx) -> Response:
        _, filters_qs = ctx.queue_filters()
        back = with_query("/queue", filters_qs)
        reason = ctx.field("reason")
        picked: dict[int, int] = {}  # candidate id → the version the reviewer saw
        for value in ctx.fields("pick"):
            ident, _, version = value.partition(":")
            row_id, row_version = _row_id(ident), _row_id(version)
            if row_id is not None and row_version is not None:
                picked[row_id] = row_version
        if not picked:
            self.flash(ctx, "error", "Select candidates first (x, or the boxes), then reject.")
            return RedirectResponse(back, 303)
        if reason not in review.REJECT_REASONS:
            self.flash(ctx, "error", "Choose a reason for the rejection.")
            return RedirectResponse(back, 303)
        try:
            outcomes = review.bulk_reject(ctx.store, list(picked), ctx.user, reason,
                                          versions=picked)
        except review.ReviewError as exc:
            self.flash(ctx, "error", f"Nothing was rejected: {exc}.")
            return RedirectResponse(back, 303)
        n = sum(len(o.candidate_ids) for o in outcomes)
        self.flash(ctx, "ok", f"Rejected {n} candidate(s) as {reason_label(reason)}.")
        return RedirectResponse(back, 303)

    def undo(self, ctx: Ctx) -> Response:
        back = local_path(ctx.field("back"))
        try:
            outcome = review.undo(ctx.store, ctx.user)
        except review.ReviewError as exc:
            self.flash(ctx, "error", str(exc))
            return RedirectResponse(back, 303)
        ids = ", ".join(f"#{i}" for i in outcome.candidate_ids)
        self.flash(ctx, "ok", f"Undone: {ids} back to {outcome.status}.")
        if urlsplit(back).path == "/queue":
            return RedirectResponse(back, 303)
        return RedirectResponse(with_query(f"/candidate/{outcome.candidate_ids[0]}",
                                           urlsplit(back).query), 303)

    # -- the registry --

    def deals(self, ctx: Ctx) -> Response:
        deals = ctx.store.deals()
        return self.render(ctx, "deals.html", deals=deals,
                           source_counts=ctx.store.deal_source_counts())

    def deal(self, ctx: Ctx, deal_id: int) -> Response:
        with ctx.store.snapshot():
            deal = ctx.store.deal(deal_id)
            if deal is None:
                return self.error(ctx, 404, "No such deal", f"There is no deal {deal_id}.")
            similar = [d for d in ctx.store.deals_like(deal.get("vendors") or [deal.get("vendor")],
                                                       deal.get("country")) if d["id"] != deal_id]
            sources, stages = ctx.store.deal_sources(deal_id), ctx.store.deal_stages(deal_id)
            merged_into = ctx.store.deal(deal["merged_into"]) if deal.get("merged_into") else None
        return self.render(ctx, "deal.html", deal=deal, sources=sources, stages=stages,
                           similar=similar, merged_into=merged_into)

    def merge(self, ctx: Ctx, deal_id: int) -> Response:
        absorb = _row_id(ctx.field("absorb"))
        try:
            if absorb is None:
                raise registry.RegistryError("choose the deal to merge into this one")
            registry.merge_deals(ctx.store, deal_id, absorb)
        except registry.RegistryError as exc:
            self.flash(ctx, "error", str(exc))
            return RedirectResponse(f"/deal/{deal_id}", 303)
        logger.info("%s merged deal %s into %d", ctx.user, absorb, deal_id)
        self.flash(ctx, "ok", f"Merged deal {absorb} into this one.")
        return RedirectResponse(f"/deal/{deal_id}", 303)

    def split(self, ctx: Ctx, deal_id: int) -> Response:
        ids = [i for i in map(_row_id, ctx.fields("source")) if i is not None]
        try:
            new_id = registry.split_deal(ctx.store, deal_id, ids, ctx.user)
        except registry.RegistryError as exc:
            self.flash(ctx, "error", str(exc))
            return RedirectResponse(f"/deal/{deal_id}", 303)
        logger.info("%s split %s from deal %d into %d", ctx.user, ids, deal_id, new_id)
        self.flash(ctx, "ok", f"Moved {len(ids)} source(s) into this new deal.")
        return RedirectResponse(f"/deal/{new_id}", 303)

    def help(self, ctx: Ctx) -> Response:
        return self.render(ctx, "help.html")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """The page for what the router or the form parser refuses (no session here)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        title, message = HTTP_ERRORS.get(status, NOT_FOUND)
        html = self.env.get_template("error.html").render(
            user="", csrf_token="", flashes=[], here="/", title=title, message=message)
        return HTMLResponse(html, status_code=status)


def create_app(config: Config, db_path: Path, *, secure_cookies: bool = True,
               allowed_hosts: list[str] | None = None) -> Starlette:
    """The review web app. secure_cookies=False only for tests over plain http (TestClient);
    allowed_hosts: Host header values to accept (None: any)."""
    web = ReviewApp(config, db_path, secure_cookies)
    e = web.endpoint
    routes = [
        Route("/", e(web.home)),
        Route("/login", e(web.login_form, auth=False), methods=["GET"]),
        Route("/login", e(web.login, auth=False), methods=["POST"],
              max_body_size=MAX_LOGIN_BODY_BYTES),
        Route("/logout", e(web.logout), methods=["POST"]),
        Route("/queue", e(web.queue)),
        Route("/help", e(web.help)),
        Route("/candidate/{candidate_id}", e(web.candidate)),
        Route("/candidate/{candidate_id}/decide", e(web.decide), methods=["POST"]),
        Route("/candidate/{candidate_id}/edit", e(web.edit), methods=["POST"]),
        Route("/bulk-reject", e(web.bulk_reject), methods=["POST"]),
        Route("/undo", e(web.undo), methods=["POST"]),
        Route("/deals", e(web.deals)),
        Route("/deal/{deal_id}", e(web.deal)),
        Route("/deal/{deal_id}/merge", e(web.merge), methods=["POST"]),
        Route("/deal/{deal_id}/split", e(web.split), methods=["POST"]),
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


def review_ui_hint(db_path: Path, has_reviewers: bool, prog: str = "dealwatch") -> str:
    """What to run to review a database in the browser (the demo prints it last)."""
    db = f"--db {db_path} " if str(db_path) != "data/dealwatch.db" else ""
    first = "" if has_reviewers else f"`{prog} {db}user add NAME` (once), then "
    return (f"Review them in your browser: {first}`{prog} {db}serve` and open "
            f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/ (j/k to move, c/r/d to decide, ? for keys).")


def run_server(config: Config, db_path: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               allow_public: bool = False) -> None:
    """Serve the review UI until Ctrl-C. Only loopback unless allow_public."""
    import uvicorn

    check_bind(host, allow_public)
    app = create_app(config, db_path, allowed_hosts=None if allow_public
                     else [*LOOPBACK_NAMES, host])
    with Store(db_path, migrate=False) as store:
        if not store.users():
            logger.warning("no reviewer accounts yet: create one with `dealwatch user add NAME`")
    if allow_public:
        # Form posts must carry an Origin of the host the browser sees: a proxy that rewrites
        # Host (nginx does, unless told otherwise) makes every form look like another site's.
        logger.warning("serving on %s for other machines: session cookies are Secure, so "
                       "browsers keep them only over HTTPS — put a TLS proxy in front that "
                       "passes the Host header on (nginx: `proxy_set_header Host $host;`)", host)
    uvicorn.run(app, host=host, port=port, proxy_headers=allow_public, server_header=False,
                log_level="info")


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
