"""The pages a handler answers with: the request context, templates and their filters, flash messages."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from models.config import COUNTERPART_TYPES, DEAL_TYPES, STAGES
from pipeline.config import Config
from pipeline.review import present
from pipeline.review.web.forms import (
    REASON_LABELS,
    parse_queue_query,
    plain,
    queue_params,
    reason_label,
    safe_url,
)
from pipeline.review.web.highlight import ENTITY_CLASSES
from pipeline.storage import CANDIDATE_STATUSES, QueueQuery, Store

# The templates and static files belong to the review package as a whole, beside this one.
REVIEW_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = REVIEW_DIR / "templates"
STATIC_DIR = REVIEW_DIR / "static"

# A deal's or a report's name in a message: linked to its page.
_RECORD_NAME = re.compile(r"\b(dw|rp)-\d{6}\b")
_RECORD_PAGES = {"dw": "/deal/", "rp": "/report/"}


def linked_names(text: str) -> Markup:
    """A message as HTML (escaped), each deal or report it names linked to its page:
    "filed as report rp-000001" links rp-000001 to /report/rp-000001."""
    parts: list[str] = []
    at = 0
    for match in _RECORD_NAME.finditer(text):
        name = match.group()
        parts += [escape(text[at:match.start()]),
                  Markup('<a href="{}">{}</a>').format(_RECORD_PAGES[match.group(1)] + name, name)]
        at = match.end()
    parts.append(escape(text[at:]))
    return Markup("").join(parts)


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


class Pages:
    """Renders templates for a request, with the flash messages waiting for its session."""

    def __init__(self, config: Config):
        self.vendor_names = {e.id: e.name for e in config.watchlist if e.type == "vendor"}
        self.vendor_options = sorted(self.vendor_names.items(), key=lambda kv: kv[1].lower())
        self.country_options = sorted(present.country_names().items())
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
                                # every page's flash messages link the records they name
                                linked_names=linked_names,
                                when=lambda t: (t or "").replace("T", " ").rstrip("Z"),
                                score_class=lambda s: "hi" if s >= 0.8 else "mid" if s >= 0.6
                                else "lo")
        self.env.globals.update(
            REASON_LABELS=REASON_LABELS, ENTITY_CLASSES=ENTITY_CLASSES, DEAL_TYPES=DEAL_TYPES,
            STAGES=STAGES, COUNTERPART_TYPES=COUNTERPART_TYPES, STATUSES=CANDIDATE_STATUSES,
            asset=lambda name: f"/static/{name}?v={self.asset_version}")

    def vendor_name(self, vendor_id: str | None) -> str:
        return self.vendor_names.get(vendor_id or "", vendor_id or "")

    def country_name(self, code: str | None) -> str:
        return present.country_name(code) or code or ""

    def country_choices(self, codes: Iterable[str]) -> list[tuple[str, str]]:
        """A country filter menu's entries: "Germany (DE)"."""
        return [(c, f"{self.country_name(c)} ({c})") for c in codes]

    def render(self, ctx: Ctx | None, template: str, status: int = 200,
               headers: Mapping[str, str] | None = None, **values: Any) -> HTMLResponse:
        session = ctx.session if ctx else None
        flashes = self.take_flashes(ctx) if ctx else []
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

    def no_version(self, ctx: Ctx, what: str) -> HTMLResponse:
        """The page for an edit or decision form posted without the version of the row it
        showed (a candidate's, a deal's): nothing is written unseen."""
        return self.error(ctx, 400, "Bad request", f"The form has no {what} version: "
                          "reload the page and try again.")

    def flash(self, ctx: Ctx, kind: str, text: str) -> None:
        """A message for the session's next page (after the redirect), kept in the accounts
        file so that whichever server process serves that page shows it."""
        if ctx.session:
            ctx.store.accounts.add_flash(ctx.session["id"], kind, text)

    def take_flashes(self, ctx: Ctx) -> list[tuple[str, str]]:
        """The session's waiting messages, each shown once. The page that says the database
        is busy (its store already closed) leaves them for the next page."""
        if not ctx.session or ctx.store.database.closed:
            return []
        return ctx.store.accounts.take_flashes(ctx.session["id"])
