"""What goes in and out of URLs and forms: row ids, queue filters and cursors, form values, safe links."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from models.config import DEAL_TYPES, STAGES
from models.registry import QueueEntry, parse_row_id
from pipeline.language import normalise_language
from pipeline.review import decisions as review
from pipeline.storage import CANDIDATE_STATUSES, QueueQuery
from pipeline.urls import scheme_of

PAGE_SIZE = 50

REASON_LABELS = {code: code.replace("_", " ").capitalize() for code in review.REJECT_REASONS}
# The fields a reviewer edits in the form, in the order shown (review.EDITABLE_FIELDS also has
# the list forms, which follow the first vendor and type).
FORM_FIELDS = ("vendor", "country", "counterpart", "counterpart_type", "deal_type", "stage",
               "value", "currency", "year")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    return QueueQuery(search=pick("q"),
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
    return out


def with_query(path: str, query: str | Mapping[str, str]) -> str:
    qs = query if isinstance(query, str) else urlencode(query)
    return f"{path}?{qs}" if qs else path


def format_cursor(entry: QueueEntry) -> str:
    return f"{float(entry.score)!r}:{int(entry.id)}"


def parse_cursor(value: str | None) -> tuple[float, int] | None:
    """A queue position from `after=`/`before=` ("score:id"); None for anything else."""
    score_text, _, ident_text = (value or "").partition(":")
    ident = parse_row_id(ident_text)
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
