"""What goes in and out of URLs and forms: row ids, queue filters and cursors, form values, safe links."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from models.config import DEAL_TYPES, STAGE_RANK, STAGES, WatchlistEntry
from models.registry import CONFIDENCE_GRADES, QueueEntry, parse_row_id
from pipeline.language import normalise_language
from pipeline.review import decisions as review
from pipeline.review import filters
from pipeline.review.filters import FilterError
from pipeline.review.views import DEAL_SORTS
from pipeline.storage import CANDIDATE_STATUSES, QueueQuery
from pipeline.storage.deal_query import DealQuery
from pipeline.storage.queue import QUEUE_SORTS, Cursor, cursor_of
from pipeline.urls import scheme_of

PAGE_SIZE = 50

REASON_LABELS = {code: code.replace("_", " ").capitalize() for code in review.REJECT_REASONS}
# The fields a reviewer edits in the form, in the order shown (review.EDITABLE_FIELDS also has
# the list forms, which follow the first vendor and type).
FORM_FIELDS = ("vendor", "country", "counterpart", "counterpart_type", "deal_type", "stage",
               "value", "currency", "year")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The deal type and stage filter menus' entries, as the queue and deals pages show them.
DEAL_TYPE_OPTIONS = [(t, t.replace("_", " ")) for t in DEAL_TYPES]
STAGE_OPTIONS = [(s, s.replace("_", " ")) for s in STAGES]
# The longest search (`q`) the deals page takes, in characters.
MAX_SEARCH = 200


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
    sort = pick("sort", QUEUE_SORTS) or "score"
    order = pick("order", ORDERS)
    return QueueQuery(search=pick("q"), sort=sort,
        descending=None if order is None else order == "desc",
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
    if query.search:
        out["q"] = query.search
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
    if query.sort != "score":
        out["sort"] = query.sort
    if query.descending is not None and query.descending != query.order.descending:
        out["order"] = "desc" if query.descending else "asc"
    return out


ORDERS = ("asc", "desc")


def sort_choice(params: Mapping[str, str], keys: Iterable[str]) -> tuple[str | None, bool | None]:
    """The `sort` and `order` of a query string (None: not given); FilterError naming the valid
    ones for any other."""
    sort, order = (params.get("sort") or "").strip(), (params.get("order") or "").strip()
    try:
        return (filters.one_of(sort, list(keys), "sort key") if sort else None,
                filters.one_of(order, ORDERS, "order") == "desc" if order else None)
    except FilterError as exc:
        raise FilterError(f"{'sort' if sort and sort not in keys else 'order'}: {exc}") from None


def checked_params(params: Mapping[str, str], checks: Mapping[str, Callable[[str], Any]]
             ) -> dict[str, Any]:
    """Each parameter read by its check (None when not given or empty); a FilterError names
    the parameter of the first value that names nothing."""
    values: dict[str, Any] = {}
    for name, check in checks.items():
        value = params.get(name)
        value = value.strip() if isinstance(value, str) else None
        try:
            values[name] = check(value) if value else None
        except FilterError as exc:
            raise FilterError(f"{name}: {exc}") from None
    return values


def _day(value: str) -> str:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise FilterError(f"{value!r} is no date: YYYY-MM-DD, such as 2025-03-31") from None


def _search(value: str) -> str:
    if len(value) > MAX_SEARCH:
        raise FilterError(f"a search of {MAX_SEARCH} characters at most")
    return value


def _score(value: str) -> str:
    score = _score_param(value)
    if score is None:
        raise FilterError(f"{value!r} is no score: a number from 0 to 1, such as 0.6")
    return value


def strict_queue_params(params: Mapping[str, str], watchlist: Iterable[WatchlistEntry],
                        sources: Sequence[str]) -> dict[str, str]:
    """The queue page's own query string checked: a filter value that names nothing (a vendor,
    country, type, stage, status, kind, source or date) is a FilterError naming the parameter
    and the valid values, as on the deals page and in the CLI, never an empty queue. A vendor's
    name or alias reads as its id, a country's code in any case as its code. What comes back is
    for parse_queue_query."""
    checked = checked_params(params, {
        "status": lambda v: filters.one_of(v, (*CANDIDATE_STATUSES, "all"), "status"),
        "kind": lambda v: filters.one_of(v, ("deal", "aggregate"), "kind"),
        "vendor": lambda v: filters.vendor_id(v, watchlist),
        "country": filters.country_code,
        "deal_type": lambda v: filters.one_of(v, DEAL_TYPES, "deal type"),
        "stage": lambda v: filters.one_of(v, STAGES, "stage"),
        "source": lambda v: filters.one_of(v, sources, "source"),
        "from": _day, "to": _day, "min_score": _score,
    })
    return {**params, **{k: v for k, v in checked.items() if v is not None}}


def parse_deal_query(params: Mapping[str, str], confidence: Iterable[str],
                     watchlist: Iterable[WatchlistEntry]) -> DealQuery:
    """The deals list's filters, search and order from a query string (an empty value: any;
    confidence: its values, which repeat); FilterError, naming the parameter and the valid
    values, for one that names nothing."""
    values = checked_params(params, {
        "vendor": lambda v: filters.vendor_id(v, watchlist),
        "country": filters.country_code,
        "deal_type": lambda v: filters.one_of(v, DEAL_TYPES, "deal type"),
        "stage": lambda v: filters.one_of(v, STAGES, "stage"),
        "year": filters.year,
        "q": _search,
    })
    grades = [g.strip().upper() for g in confidence if g.strip()]
    for grade in grades:
        if grade not in CONFIDENCE_GRADES:
            raise FilterError(f"confidence: {grade!r} is no confidence grade: use one of "
                              f"{', '.join(CONFIDENCE_GRADES)}")
    search = values.pop("q")
    sort, descending = sort_choice(params, DEAL_SORTS)
    return DealQuery(**values, search=search, confidence=tuple(dict.fromkeys(grades)),
                     sort=sort or "deal_id", descending=bool(descending))


def deal_params(query: DealQuery) -> list[tuple[str, str]]:
    """The query-string form of a DealQuery (defaults left out; a grade per `confidence`)."""
    out = [(name, str(value)) for name, value in (
        ("q", query.search), ("vendor", query.vendor), ("country", query.country),
        ("deal_type", query.deal_type), ("stage", query.stage), ("year", query.year))
        if value is not None]
    out += [("confidence", grade) for grade in query.confidence]
    if query.sort != "deal_id":
        out.append(("sort", query.sort))
    if query.descending:
        out.append(("order", "desc"))
    return out


def as_sentence(text: object) -> str:
    """A message ending as a sentence does (a question keeps its mark)."""
    message = str(text)
    return message if message.endswith((".", "?", "!")) else message + "."


DOWNLOADS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def download_format(params: Mapping[str, str]) -> str | None:
    """The `format` a view is asked for as a download (csv, json); None: the page."""
    fmt = (params.get("format") or "").strip()
    if not fmt:
        return None
    try:
        return filters.one_of(fmt, list(DOWNLOADS), "download format")
    except FilterError as exc:
        raise FilterError(f"format: {exc}") from None


def download_links(path: str, params: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    """A list page's download link per format: the view's own query string and `format`."""
    params = list(params)
    return lambda fmt: with_query(path, [*params, ("format", fmt)])


def download(data: bytes, what: str, fmt: str) -> Response:
    """A view's rows as a file to save: dealwatch-<what>-<UTC date>.<fmt>."""
    name = f"dealwatch-{what}-{datetime.now(UTC):%Y-%m-%d}.{fmt}"
    return Response(data, media_type=DOWNLOADS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@dataclass(frozen=True)
class SortLinks:
    """A sortable table's header links: a column's link sorts by it in its own order, or, when
    the table is sorted by it, in the other; aria-sort and an arrow say which is on."""

    path: str
    params: list[tuple[str, str]]  # the view's filters, without sort and order
    sort: str
    descending: bool
    natural: Callable[[str], bool]  # a key's own order: descending or not

    def url(self, key: str) -> str:
        desc = not self.descending if key == self.sort else self.natural(key)
        return with_query(self.path, [*self.params, ("sort", key),
                                      ("order", "desc" if desc else "asc")])

    def aria(self, *keys: str) -> str:
        if self.sort not in keys:
            return "none"
        return "descending" if self.descending else "ascending"

    def arrow(self, key: str) -> str:
        return ("↓" if self.descending else "↑") if key == self.sort else ""


def with_query(path: str, query: str | Mapping[str, str] | list[tuple[str, str]]) -> str:
    qs = query if isinstance(query, str) else urlencode(query)
    return f"{path}?{qs}" if qs else path


def format_cursor(entry: QueueEntry, query: QueueQuery | None = None) -> str:
    """An entry's place in the queue's order for `after=`/`before=`: "score:id" in the default
    order, "key:value:id" in another (the value as JSON: text, a number or null)."""
    query = query or QueueQuery()
    value, ident = cursor_of(entry, query)
    if query.sort == "score":
        return f"{float(value)!r}:{ident}"
    return f"{query.sort}:{json.dumps(value, ensure_ascii=False)}:{ident}"


def parse_cursor(value: str | None, query: QueueQuery | None = None) -> Cursor | None:
    """A queue position from `after=`/`before=`, in the query's order (format_cursor); None for
    anything else, a cursor of another order too."""
    query = query or QueueQuery()
    head, _, ident_text = (value or "").rpartition(":")
    ident = parse_row_id(ident_text)
    if ident is None or len(head) > 1000:
        return None
    if query.sort == "score":
        try:
            score = float(head)
        except ValueError:
            return None
        return (score, ident) if math.isfinite(score) else None
    key, _, text = head.partition(":")
    if key != query.sort:
        return None
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if query.sort == "stage":  # a stage's rank: any other number would reach the SQL (SQLite
        # refuses an integer past 64 bits with an OverflowError)
        return (found, ident) if found is None or (
            type(found) is int and found in STAGE_RANK.values()) else None
    return (found, ident) if found is None or type(found) is str else None


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
    return url if scheme_of(url) in ("http", "https") else None


def local_path(target: str | None, default: str = "/queue") -> str:
    """A redirect target that stays on this site (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def changed_edits(form: Mapping[str, Any], candidate: QueueEntry) -> dict[str, str]:
    """The edit fields whose submitted value differs from the candidate's: only those are
    written, so an untouched field keeps its exact stored value (and its list form)."""
    edits: dict[str, str] = {}
    for name in FORM_FIELDS:
        if name in form:
            value = str(form[name]).strip()
            if value != plain(getattr(candidate, name)):
                edits[name] = value
    return edits
