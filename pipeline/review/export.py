"""Registry export: confirmed deals as CSV, JSON or JSON Lines records, and pushed to an HTTP endpoint.

A record is one live deal (merged deals are left out) in the field order of DESIGN.md, with its
sources. The same registry gives the same bytes: records come in deal order, sources and stage
history in a fixed order, and nothing in them depends on when the export ran.

A push sends each deal version the endpoint has not acknowledged yet, one POST per deal with the
idempotency key `<deal_id>-v<version>`; every answer is written to `deal_pushes` at once, so a
push that stops half way (or a server that fails half way) loses nothing, and the next push
sends only what was not acknowledged.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypedDict
from urllib.error import HTTPError, URLError

from models.errors import DealwatchError
from models.registry import Deal, DealSource, DealStage
from pipeline.dates import retry_after_seconds
from pipeline.review.present import country_name
from pipeline.review.registry import is_official, triangulate
from pipeline.storage import Store

logger = logging.getLogger(__name__)

FORMATS = ("csv", "json", "jsonl")

# DESIGN.md "Registry record (export)", in order. New fields go at the end; none is renamed.
BASE_RECORD_FIELDS = (
    "deal_id", "vendor", "vendors", "country", "country_name", "counterpart", "counterpart_type",
    "deal_type", "deal_types", "stage", "value", "currency", "year", "first_reported",
    "last_reported", "sources", "confirmed_by", "confirmed_at", "notes",
    "version", "stage_history",
)
# Triangulation (README, "Triangulation and confidence"): how well the deal is attested.
TRIANGULATION_FIELDS = ("source_count", "independent_sources", "official_source", "confidence")
# A known deal's origin (README, "Importing a registry"); empty for the others.
KNOWN_DEAL_FIELDS = ("external_id", "source_url", "imported_from", "imported_at")
# The known deals merged into it: their external ids and, in the same order, their registries'
# sources (counted in source_count). external_id and source_url stay the deal's own.
MERGED_KNOWN_FIELDS = ("merged_external_ids", "merged_source_urls")
RECORD_FIELDS = BASE_RECORD_FIELDS + TRIANGULATION_FIELDS + KNOWN_DEAL_FIELDS + MERGED_KNOWN_FIELDS
SOURCE_FIELDS = ("url", "title", "published", "sentence", "site", "official")

# CSV: the record's columns (lists joined with "; ", `sources` = the source URLs), then one
# column per other source field, each listing the sources in the same order as `sources`.
CSV_EXTRA_COLUMNS = ("source_count", "source_titles", "source_dates", "source_sites", "evidence")
# The CSV had source_count before the record did: it keeps its place, the rest come last.
CSV_COLUMNS = BASE_RECORD_FIELDS + CSV_EXTRA_COLUMNS + tuple(
    name for name in TRIANGULATION_FIELDS if name not in CSV_EXTRA_COLUMNS) + KNOWN_DEAL_FIELDS + (
    MERGED_KNOWN_FIELDS)
LIST_SEPARATOR = "; "
# Titles and evidence sentences may hold semicolons themselves: one per line in their cell.
TEXT_SEPARATOR = "\n"
# Free text that comes from crawled pages or reviewers; a spreadsheet would run a cell starting
# with one of FORMULA_STARTS as a formula (CSV injection), so such a cell gets a leading "'".
# Cells whose text came from the web or a person: defused so a spreadsheet shows, not runs, it.
CSV_TEXT_COLUMNS = ("counterpart", "notes", "source_titles", "source_sites", "evidence",
                    "currency", "confirmed_by", "external_id", "source_url", "imported_from",
                    "merged_external_ids", "merged_source_urls")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportError(DealwatchError):
    """An export or push that cannot be done as asked (bad format, date or endpoint)."""


class SourceRecord(TypedDict):
    """One source of a deal as exported (SOURCE_FIELDS)."""

    url: str | None
    title: str | None  # on one line
    published: str | None  # the day
    sentence: str | None  # the evidence, on one line
    site: str | None
    official: bool  # an official statement (sources.toml, or a reviewer's word)


class StageChange(TypedDict):
    """A change of a deal's stage: the stage, the day it was reported and by which source."""

    stage: str
    reported: str | None
    url: str | None


class RegistryRecord(TypedDict):
    """One deal as exported and pushed: the keys of RECORD_FIELDS, in that order."""

    deal_id: str
    vendor: str | None
    vendors: list[str]
    country: str | None
    country_name: str | None
    counterpart: str | None
    counterpart_type: str | None
    deal_type: str | None
    deal_types: list[str]
    stage: str | None
    value: float | None
    currency: str | None
    year: int | None
    first_reported: str | None
    last_reported: str | None
    sources: list[SourceRecord]
    confirmed_by: str | None
    confirmed_at: str | None
    notes: str | None
    version: int
    stage_history: list[StageChange]
    source_count: int
    independent_sources: int  # distinct publishers: syndicated copies and repeats count once
    official_source: bool  # a government's or vendor's own statement among the sources
    confidence: str  # A | B | C
    external_id: str | None  # a known deal's id in the registry it was imported from
    source_url: str | None  # that registry's source for it (counted in source_count)
    imported_from: str | None  # the file it was last imported from
    imported_at: str | None  # when
    merged_external_ids: list[str]  # the external ids of the known deals merged into it
    merged_source_urls: list[str | None]  # their registries' sources, in the same order


class MergedNotice(TypedDict):
    """What a push tells an endpoint about a deal it knew that was merged into another."""

    deal_id: str
    version: int
    merged_into: str | None


# --- records --------------------------------------------------------------------------------


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else text


def _sources(sources: list[DealSource], official: Collection[str]) -> list[SourceRecord]:
    out: list[SourceRecord] = [{
        "url": s.url,
        "title": _one_line(s.title),
        "published": _day(s.published),
        "sentence": _one_line(s.sentence),
        "site": s.site,
        "official": is_official(s, official),
    } for s in sources]
    # Oldest report first; undated reports last; ties broken by what the source says, never by
    # when it was filed, so the same sources always come in the same order.
    return sorted(out, key=lambda s: (s["published"] is None, s["published"] or "", s["url"] or "",
                                      s["sentence"] or ""))


def _stage_history(stages: list[DealStage], sources: dict[int, str | None]
                   ) -> list[StageChange]:
    """Stage changes, oldest first: a stage reported again by a later article is not a change.
    sources: candidate id -> URL, of the deal's confirmed sources."""
    history: list[StageChange] = []
    for stage in stages:
        if stage.candidate_id is not None and stage.candidate_id not in sources:
            continue  # reported by a candidate that is no longer a confirmed source
        if history and history[-1]["stage"] == stage.stage:
            continue
        history.append({"stage": stage.stage, "reported": _day(stage.reported_at),
                        "url": sources.get(stage.candidate_id)
                        if stage.candidate_id is not None else None})
    return history


def registry_record(deal: Deal, sources: list[DealSource], stages: list[DealStage],
                    official: Collection[str] = ()) -> RegistryRecord:
    """A deal with its sources and stage history as a registry record (DESIGN.md field order,
    then `version`, `stage_history` and its triangulation). official: the configured sources
    marked official (`review.registry.official_source_ids`)."""
    weighed = triangulate(sources, official, deal)
    record: RegistryRecord = {
        "deal_id": deal.deal_id,
        "vendor": deal.vendor,
        "vendors": list(deal.vendors or []),
        "country": deal.country,
        "country_name": country_name(deal.country),
        "counterpart": deal.counterpart,
        "counterpart_type": deal.counterpart_type,
        "deal_type": deal.deal_type,
        "deal_types": list(deal.deal_types or []),
        "stage": deal.stage,
        "value": float(deal.value) if deal.value is not None else None,
        "currency": deal.currency,
        "year": int(deal.year) if deal.year is not None else None,
        "first_reported": deal.first_reported,
        "last_reported": deal.last_reported,
        "sources": _sources(sources, official),
        "confirmed_by": deal.confirmed_by,
        "confirmed_at": deal.confirmed_at,
        "notes": deal.notes,
        "version": int(deal.version),
        "stage_history": _stage_history(stages, {s.candidate_id: s.url for s in sources}),
        "source_count": weighed.sources,
        "independent_sources": weighed.independent_sources,
        "official_source": weighed.official_source,
        "confidence": weighed.confidence,
        "external_id": deal.external_id,
        "source_url": deal.source_url,
        "imported_from": deal.imported_from,
        "imported_at": deal.imported_at,
        "merged_external_ids": [known.external_id or "" for known in deal.merged_known],
        "merged_source_urls": [known.source_url for known in deal.merged_known],
    }
    assert tuple(record) == RECORD_FIELDS
    return record


def deal_record(store: Store, deal: Deal, official: Collection[str] = ()) -> RegistryRecord:
    """One deal as a registry record, with its sources and stages as stored now."""
    return registry_record(deal, store.registry.deal_sources(deal.id),
                           store.registry.deal_stages(deal.id), official)


def parse_since(text: str) -> str:
    """A --since value (a date, or a date and time) in the form `deals.updated_at` is stored in,
    so the two compare as text."""
    try:
        if len(text.strip()) == 10:
            return date.fromisoformat(text.strip()).isoformat()
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ExportError(f"since: a date such as 2026-01-31 (or 2026-01-31T08:00Z), not {text!r}"
                          ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def registry_records(store: Store, since: str | None = None, official: Collection[str] = ()
                     ) -> list[RegistryRecord]:
    """Every live deal as a registry record, in deal order. official: the configured sources
    marked official.

    since: only deals changed (`deals.updated_at`: a new source, stage, field or merge) on or
    after this date — what an incremental export wants. Merged deals are never included.
    """
    since = parse_since(since) if since else None
    with store.snapshot():  # one consistent snapshot, while reviewers keep confirming
        deals = store.registry.deals(since=since)
        sources, stages = store.registry.sources_by_deal(), store.registry.stages_by_deal()
    return [registry_record(deal, sources.get(deal.id, []), stages.get(deal.id, []), official)
            for deal in deals]


# --- writers --------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """A value as one CSV cell: lists joined, whole floats without ".0", booleans yes/no."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def defuse(text: str) -> str:
    """A cell a spreadsheet shows rather than runs (CSV injection: FORMULA_STARTS)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(record: RegistryRecord) -> dict[str, str]:
    """A record flattened for a spreadsheet: one row, one value per cell."""
    sources = record["sources"]
    flat = {name: csv_cell(record.get(name)) for name in RECORD_FIELDS}
    flat["sources"] = LIST_SEPARATOR.join(s["url"] or "" for s in sources)
    flat["stage_history"] = LIST_SEPARATOR.join(
        f"{h['reported'] or 'undated'} {h['stage']}" for h in record["stage_history"])
    flat["source_count"] = str(record["source_count"])  # a known deal's registry source too
    flat["source_titles"] = TEXT_SEPARATOR.join(s["title"] or "" for s in sources)
    flat["source_dates"] = LIST_SEPARATOR.join(s["published"] or "" for s in sources)
    flat["source_sites"] = LIST_SEPARATOR.join(s["site"] or "" for s in sources)
    flat["evidence"] = TEXT_SEPARATOR.join(s["sentence"] or "" for s in sources)
    flat["merged_source_urls"] = LIST_SEPARATOR.join(u or "" for u in record["merged_source_urls"])
    for name in CSV_TEXT_COLUMNS:
        flat[name] = defuse(flat[name])
    return flat


def csv_table(rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> bytes:
    """Flat rows as CSV bytes (UTF-8, CRLF line ends, a header row)."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def to_csv(records: list[RegistryRecord]) -> bytes:
    return csv_table((csv_row(record) for record in records), CSV_COLUMNS)


def to_json(records: Sequence[Mapping[str, Any]]) -> bytes:
    return (json.dumps(records, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def to_jsonl(records: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


WRITERS: dict[str, Callable[[list[RegistryRecord]], bytes]] = {
    "csv": to_csv, "json": to_json, "jsonl": to_jsonl}


@dataclass(frozen=True)
class Export:
    format: str
    data: bytes
    deals: int
    since: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def build_export(store: Store, fmt: str, since: str | None = None,
                 official: Collection[str] = ()) -> Export:
    """The export's bytes (export_registry writes and logs them)."""
    if fmt not in WRITERS:
        raise ExportError(f"format: one of {', '.join(FORMATS)}, not {fmt!r}")
    since = parse_since(since) if since else None
    records = registry_records(store, since, official)
    return Export(fmt, WRITERS[fmt](records), len(records), since)


def log_export(store: Store, export: Export, destination: str) -> int:
    """Record a written export in `exports` (format, where, since, how many deals, sha256)."""
    return store.registry.record_export(export.format, destination, export.since, export.deals,
                               export.sha256)


def export_registry(store: Store, fmt: str, since: str | None,
                    write: Callable[[bytes], str], official: Collection[str] = ()
                    ) -> tuple[Export, str]:
    """Build the export, hand its bytes to write (which says where they went), and log it in
    `exports`: the export and its destination. An export that could not be written (write
    raises) is not logged."""
    export = build_export(store, fmt, since, official)
    destination = write(export.data)
    log_export(store, export, destination)
    return export, destination


# --- push -----------------------------------------------------------------------------------


@dataclass
class PushReport:
    endpoint: str
    sent: list[str] = field(default_factory=list)  # "<deal_id>-v<version>" acknowledged now
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    up_to_date: int = 0
    requests: int = 0
    payload_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (f"{len(self.sent)} sent, {len(self.failed)} failed, {self.up_to_date} already "
                "up to date")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302 after a POST as a GET without the body and report the
    GET's 200 as success; a registry endpoint that moved must be fixed in the command instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


def _retry_after(headers: Any) -> float | None:
    return retry_after_seconds((headers or {}).get("Retry-After"))


@dataclass(frozen=True)
class _Attempt:
    """What one POST came to: acknowledged (`done`), worth trying again (`retry`), or neither."""

    done: bool
    retry: bool
    error: str | None = None
    wait: float | None = None  # what the endpoint asked for (Retry-After), in seconds


def _answer(status: int, reason: str, headers: Any) -> _Attempt:
    if 200 <= status < 300 or status == 409:
        # 409: the endpoint already has this idempotency key, i.e. this very version.
        return _Attempt(True, False)
    error = f"HTTP {status} {reason}".strip()
    if 300 <= status < 400:
        where = (headers or {}).get("Location")
        return _Attempt(False, False, f"{error}: the endpoint redirects"
                        + (f" to {where}; push to that URL" if where else ""))
    if status in (429, 503):
        return _Attempt(False, True, error, _retry_after(headers))
    if status >= 500:
        return _Attempt(False, True, error)
    return _Attempt(False, False, error)


def _post_once(opener: Any, url: str, body: bytes, headers: dict[str, str],
               timeout: float) -> _Attempt:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return _answer(response.status, response.reason or "", response.headers)
    except HTTPError as exc:
        with exc:
            return _answer(exc.code, str(exc.reason or ""), exc.headers)
    except URLError as exc:
        return _Attempt(False, True, f"cannot reach the endpoint: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        # The request may have reached the server (a lost answer): the retry carries the same
        # idempotency key, so the endpoint can tell it has it already.
        return _Attempt(False, True, f"no answer: {exc.__class__.__name__}: {exc}".rstrip(": "))


def _push_payload(store: Store, deal: Deal, official: Collection[str]
                  ) -> RegistryRecord | MergedNotice:
    if deal.merged_into:
        # The endpoint knew this deal; tell it the deal now lives on as another one.
        keeper = store.registry.deal(int(deal.merged_into))
        return {"deal_id": deal.deal_id, "version": int(deal.version),
                "merged_into": keeper.deal_id if keeper else None}
    return deal_record(store, deal, official)


def push_deals(store: Store, url: str, *, timeout: float = 30.0, retries: int = 3,
               backoff: float = 1.0, session: Any = None, token: str | None = None,
               max_wait: float = 60.0, sleep: Callable[[float], None] = time.sleep,
               official: Collection[str] = ()) -> PushReport:
    """POST every deal version the endpoint has not acknowledged; return what happened.

    session: something with urllib's `open(request, timeout=)` (default: an opener that does
    not follow redirects). token: sent as `Authorization: Bearer`. A deal that fails after
    `retries` retries is recorded as failed and the push goes on with the next deal.
    official: the configured sources marked official.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, not on every retry later
    except ValueError:
        parts = urllib.parse.urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExportError(f"push: an http:// or https:// URL, not {url!r}")
    opener = session or _opener()
    report = PushReport(url)
    acknowledged = store.registry.pushed_versions(url)
    digest = hashlib.sha256()
    for listed in store.registry.deals(include_merged=True):
        with store.snapshot():  # the deal, its version and its sources as of one moment
            deal = store.registry.deal(listed.id)
            if deal is None:
                continue  # withdrawn while the push went on
            version = int(deal.version)
            known = acknowledged.get(deal.id)
            if deal.merged_into and known is None:
                continue  # merged before the endpoint ever saw it: nothing to tell
            if known is not None and known >= version:
                report.up_to_date += 1
                continue
            payload = _push_payload(store, deal, official)
        key = f"{deal.deal_id}-v{version}"
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   "User-Agent": "dealwatch registry push"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempt = _Attempt(False, True)
        for number in range(retries + 1):
            report.requests += 1
            attempt = _post_once(opener, url, body, headers, timeout)
            if attempt.done or not attempt.retry or number == retries:
                break
            wait = attempt.wait if attempt.wait is not None else backoff * 2 ** number
            logger.info("push %s: %s; retrying in %.1fs", key, attempt.error, min(wait, max_wait))
            sleep(min(wait, max_wait))
        if attempt.done:
            store.registry.record_push(url, deal.id, version, key, "sent")
            report.sent.append(key)
            digest.update(body + b"\n")
        else:
            error = attempt.error or "failed"
            store.registry.record_push(url, deal.id, version, key, "failed", error)
            report.failed.append((key, error))
            logger.warning("push %s failed: %s", key, error)
    report.payload_sha256 = digest.hexdigest()
    return report


def push_registry(store: Store, url: str, *, timeout: float = 30.0, retries: int = 3,
                  backoff: float = 1.0, token: str | None = None,
                  official: Collection[str] = ()) -> PushReport:
    """push_deals, then log the push in `exports` (what was sent now and its sha256)."""
    report = push_deals(store, url, timeout=timeout, retries=retries, backoff=backoff, token=token,
                        official=official)
    store.registry.record_export("push", url, None, len(report.sent), report.payload_sha256)
    return report
