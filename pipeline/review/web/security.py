"""Security: response headers, request limits, sessions, cookies, CSRF and origin checks, login throttle."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.review import accounts
from pipeline.review.web.forms import PAGE_SIZE, local_path
from pipeline.review.web.pages import Ctx, Pages
from pipeline.storage import Store, StoreError
from pipeline.storage.database import is_driver_error

logger = logging.getLogger(__name__)

# Forms are small: the biggest, bulk reject, sends one pick a queue row. No form takes files.
MAX_FORM_FIELDS = 4 * PAGE_SIZE
# Request bodies past these sizes are refused (413) before they are read: Starlette's body
# limit checks Content-Length first, then counts what arrives (chunked bodies).
MAX_BODY_BYTES = 256 * 1024  # every route: the biggest form is a few kilobytes
MAX_LOGIN_BODY_BYTES = 8 * 1024  # the login form: a name, a password, its token, where to go
SESSION_TTL = 12 * 3600  # a working day; after it the reviewer logs in again
LOGIN_WINDOW = 15 * 60
LOGIN_LIMIT = 5  # failed logins per name or per address within LOGIN_WINDOW

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


class Auth:
    """Who is asking and whether they may: session cookies, CSRF and origin checks, logging in
    (within the throttle) and out."""

    def __init__(self, pages: Pages, open_store: Callable[[], AbstractContextManager[Store]],
                 secure_cookies: bool = True):
        self.pages = pages
        self.open_store = open_store
        self.secure = secure_cookies
        # __Host- cookies are only accepted with Secure, Path=/ and no Domain: a sibling host
        # cannot plant or read them.
        self.session_cookie = "__Host-dealwatch" if secure_cookies else "dealwatch_session"
        self.login_cookie = "__Host-dealwatch-login" if secure_cookies else "dealwatch_login"

    def cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=True, samesite="strict")

    def session(self, store: Store, request: Request) -> dict[str, Any] | None:
        """The live session this request's cookie names, if any."""
        sid = request.cookies.get(self.session_cookie)
        return store.accounts.session(sid) if sid else None

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries a live session (dispatch checks it again)."""
        sid = request.cookies.get(self.session_cookie)
        if not sid:
            return False
        try:
            with self.open_store() as store:
                return store.accounts.session(sid) is not None
        except Exception as exc:
            if not (isinstance(exc, StoreError) or is_driver_error(exc)):
                raise
            return True  # let dispatch say what is wrong with the database

    def refusal(self, ctx: Ctx, auth: bool) -> Response | None:
        """Why this request may not run the handler (no login, another site, no CSRF token)."""
        request = ctx.request
        if auth and ctx.session is None:
            if request.method == "GET":
                target = request.url.path + ("?" + request.url.query if request.url.query
                                             else "")
                return RedirectResponse("/login?" + urlencode({"next": target}), 303)
            return self.pages.error(ctx, 403, "Not logged in",
                                    "Your session has ended. Log in again, then repeat the action.")
        if request.method == "POST":
            if not self.same_origin(request):
                logger.warning("refused a %s to %s from Origin %s for Host %s (behind a proxy? "
                               "it must pass the Host header on: nginx `proxy_set_header Host "
                               "$host;`)", request.method, request.url.path,
                               request.headers.get("origin"), request.headers.get("host"))
                return self.pages.error(ctx, 403, "Refused",
                                        "This form was sent from another site.")
            if auth and ctx.session is not None and not hmac.compare_digest(
                    ctx.field("csrf_token").encode(), str(ctx.session["csrf_token"]).encode()):
                return self.pages.error(ctx, 403, "Refused: missing or stale form token",
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
        try:
            return urlsplit(origin).netloc == request.headers.get("host", "")
        except ValueError:  # "http://[" is no origin of ours
            return False

    # -- login --

    def login_form(self, ctx: Ctx) -> Response:
        if ctx.session:
            return RedirectResponse(local_path(ctx.request.query_params.get("next")), 303)
        return self.login_page(ctx, ctx.request.query_params.get("next", ""))

    def login_page(self, ctx: Ctx, next_url: str, error: str = "", status: int = 200,
                   name: str = "", headers: Mapping[str, str] | None = None) -> Response:
        token = ctx.request.cookies.get(self.login_cookie) or secrets.token_urlsafe(32)
        response = self.pages.render(ctx, "login.html", status=status, headers=headers,
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
            return self.pages.error(ctx, 403, "Refused: missing or stale form token",
                                    "Reload the login page and try again.")
        name, password = ctx.field("name"), ctx.field("password", strip=False)
        address = ctx.request.client.host if ctx.request.client else "unknown"
        if ctx.store.accounts.login_failures(name, address, LOGIN_WINDOW) >= LOGIN_LIMIT:
            logger.warning("login refused for %r from %s: too many failures", name, address)
            return self.login_page(
                ctx, next_url, status=429, name=name, headers={"retry-after": str(LOGIN_WINDOW)},
                error=f"Too many failed logins for this name or from this address. Wait "
                      f"{LOGIN_WINDOW // 60} minutes and try again.")
        user = accounts.authenticate(ctx.store, name, password)
        if user is None:
            ctx.store.accounts.record_login_failure(name, address)
            logger.info("failed login for %r from %s", name, address)
            return self.login_page(ctx, next_url, status=401, name=name,
                                   error="Wrong name or password.")
        ctx.store.accounts.clear_login_failures(name)
        session = ctx.store.accounts.create_session(int(str(user["id"])), SESSION_TTL)
        response = RedirectResponse(local_path(next_url), 303)
        self.cookie(response, self.session_cookie, session["id"], SESSION_TTL)
        response.delete_cookie(self.login_cookie, path="/", secure=self.secure, httponly=True,
                               samesite="strict")
        logger.info("%s logged in from %s", name, address)
        return response

    def logout(self, ctx: Ctx) -> Response:
        assert ctx.session is not None
        ctx.store.accounts.delete_session(ctx.session["id"])
        response = RedirectResponse("/login", 303)
        response.delete_cookie(self.session_cookie, path="/", secure=self.secure, httponly=True,
                               samesite="strict")
        return response

