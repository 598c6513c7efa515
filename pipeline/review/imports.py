"""Known deals: loading deals from another registry (`dealwatch deals import FILE`).

A file (CSV with a header, or JSON Lines) gives one deal a row in the columns of COLUMNS. Every
row is checked as a reviewer's edit of a deal is (`corrections.clean_deal_edits`), after the
names people write are turned into what the registry stores ("Huawei" -> huawei, "Kenya" ->
KE, "Data centre" -> data_centre). A row that cannot be read is reported with its line and
reason and left out; the others load, all in one transaction.

Imports are idempotent by `external_id` (the other registry's id). A re-import compares each row
with what the deal's last import gave it (kept in `deals.imported_fields`): a row the other
registry has not changed leaves the deal alone, whatever reviewers have done to it since; a
changed row sets only the fields it changed, as a new version of the deal.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.config import WatchlistEntry
from models.errors import DealwatchError
from models.registry import Deal, deal_number
from pipeline.jsonl import JsonLineError, json_lines, parse_json_line
from pipeline.review.corrections import clean_deal_edits
from pipeline.review.filters import vendor_names
from pipeline.review.present import country_names
from pipeline.review.registry import RegistryError
from pipeline.storage import Store, utcnow
from pipeline.urls import host_of, scheme_of

logger = logging.getLogger(__name__)

# The columns of a known-deals file (README, "Importing a registry"), in the order the README
# lists them. Only these three must have a value.
COLUMNS = ("external_id", "vendor", "country", "counterpart", "deal_type", "stage", "value",
           "currency", "year", "source_url")
REQUIRED = ("external_id", "vendor", "country")
FORMATS = ("csv", "jsonl")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# What an import records of a deal, besides its fields: compared on a re-import.
IMPORTED_COLUMNS = ("source_url",)
_TYPE_SEPARATORS = re.compile(r"[;,]")


class DealImportError(DealwatchError):
    """A known-deals file that cannot be imported at all (unreadable, no usable header)."""


class BadRow(ValueError):
    """A row that cannot be imported; the message says why, in one line."""


@dataclass(frozen=True)
class KnownDeal:
    """One row of a known-deals file, checked: the deal fields it gives and its source."""

    line: int
    external_id: str
    fields: dict[str, Any]  # vendor, vendors, country, counterpart, deal_type(s), stage, value, …
    source_url: str | None = None

    def imported(self) -> dict[str, Any]:
        """What an import records of this row (`deals.imported_fields`)."""
        return {**self.fields, "source_url": self.source_url}


@dataclass(frozen=True)
class Problem:
    """A row left out, and why."""

    line: int
    reason: str


@dataclass
class KnownDealsFile:
    """A known-deals file as read: its rows, the rows left out, the columns it ignores."""

    name: str
    rows: list[KnownDeal] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # columns (keys) that are not COLUMNS


# --- reading a row --------------------------------------------------------------------------


class VendorNames:
    """A watchlist vendor's id from its id, its name or an alias, in any case."""

    def __init__(self, watchlist: Iterable[WatchlistEntry]):
        self.ids = vendor_names(watchlist)
        self.known = set(self.ids.values())

    def id_of(self, name: str) -> str:
        found = self.ids.get(name.strip().casefold())
        if found is None:
            raise BadRow(f"vendor: {name.strip()!r} is no watchlist vendor (its id, name or an "
                         f"alias: {', '.join(sorted(self.known))})")
        return found


def country_code(text: str) -> str:
    """An ISO 3166-1 alpha-2 code from the code (any case), its alpha-3 code or English name."""
    codes = country_names()
    if text.upper() in codes:
        return text.upper()
    import pycountry  # loaded only for a name

    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        raise BadRow(f"country: {text!r} is no ISO 3166 country (a code such as KE, or a name "
                     "such as Kenya)") from None


def _word(text: str) -> str:
    """A vocabulary word as people write it ("Data centre", "under-construction")."""
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _text(values: Mapping[str, Any], name: str) -> str:
    """A column's value as text ("" when absent); a list or an object is no value of ours."""
    value = values.get(name)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float | list):
        raise BadRow(f"{name}: a string or a number, not {value!r}")
    if isinstance(value, list):
        if name not in ("vendor", "deal_type") or not all(isinstance(v, str) for v in value):
            raise BadRow(f"{name}: one value, not a list")
        return ";".join(value)
    if name == "year" and isinstance(value, float) and not value.is_integer():
        raise BadRow(f"year: a whole number, not {value!r}")
    if isinstance(value, float) and value.is_integer() and name in ("year", "external_id"):
        value = int(value)
    return str(value).strip()


def known_deal(line: int, values: Mapping[str, Any], vendors: VendorNames) -> KnownDeal:
    """One row checked: BadRow (one line) when it cannot be imported."""
    external_id = _text(values, "external_id")
    if not external_id:
        raise BadRow("external_id: missing (a re-import recognises the deal by it)")
    named = [v for v in _text(values, "vendor").split(";") if v.strip()]
    if not named:
        raise BadRow("vendor: missing (a watchlist vendor's id or name, such as huawei)")
    ids = list(dict.fromkeys(vendors.id_of(v) for v in named))
    country = _text(values, "country")
    if not country:
        raise BadRow("country: missing (an ISO 3166 code such as KE, or a name)")
    types = [_word(t) for t in _TYPE_SEPARATORS.split(_text(values, "deal_type")) if t.strip()]
    edits = {"vendors": ids, "vendor": ids[0], "country": country_code(country),
             "counterpart": _text(values, "counterpart") or None,
             "deal_types": list(dict.fromkeys(types)), "deal_type": types[0] if types else None,
             "stage": _word(_text(values, "stage")) or None, "value": _text(values, "value"),
             "currency": _text(values, "currency"), "year": _text(values, "year")}
    try:
        fields = clean_deal_edits(edits, vendors.known)
    except RegistryError as exc:
        raise BadRow(str(exc)) from None
    if fields["currency"] is not None:
        import pycountry  # loaded only for a currency

        if pycountry.currencies.get(alpha_3=fields["currency"]) is None:
            raise BadRow(f"currency: {fields['currency']!r} is no ISO 4217 code (such as USD)")
    source_url = _text(values, "source_url") or None
    if source_url and (scheme_of(source_url) not in ("http", "https") or not host_of(source_url)):
        raise BadRow(f"source_url: an http(s) address, not {source_url!r}")
    return KnownDeal(line, external_id, fields, source_url)


# --- reading a file -------------------------------------------------------------------------


def file_format(path: Path, fmt: str | None) -> str:
    """The format asked for, else the one the file's name says."""
    if fmt:
        return fmt
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise DealImportError(f"{path.name}: the name ends in none of "
                              f"{', '.join(EXTENSIONS)}: say --format csv or --format jsonl")
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DealImportError(f"{path}: no such file; nothing was imported") from None
    except UnicodeDecodeError as exc:
        raise DealImportError(f"{path}: not UTF-8 text (byte {exc.start}); nothing was "
                              "imported") from None
    except OSError as exc:
        raise DealImportError(f"{path}: cannot read: {exc.strerror or exc}; nothing was "
                              "imported") from None


def _csv_records(name: str, text: str, found: KnownDealsFile
                 ) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [(column or "").strip().lower() for column in reader.fieldnames or []]
    except csv.Error as exc:
        raise DealImportError(f"{name}:1: not CSV ({exc}); nothing was imported") from None
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        hint = ("" if set(header) & set(COLUMNS) else
                " (is the header line missing? it names the columns: "
                f"{', '.join(COLUMNS)})")
        raise DealImportError(
            f"{name}:1: no usable header: it lacks {', '.join(missing)}{hint}; nothing was "
            "imported")
    twice = sorted({column for column in header if column and header.count(column) > 1})
    if twice:
        raise DealImportError(f"{name}:1: the header names {', '.join(twice)} twice; nothing "
                              "was imported")
    reader.fieldnames = header
    found.ignored = [column or "(unnamed)" for column in header if column not in COLUMNS]
    try:
        for record in reader:
            if None in record:
                found.problems.append(Problem(reader.line_num, (
                    f"{len(header) + len(record[None])} values; the header names "
                    f"{len(header)} columns")))
            elif any((value or "").strip() for value in record.values()):
                yield reader.line_num, record
            # else an empty row (a spreadsheet's trailing ",,,,"): nothing to import
    except csv.Error as exc:
        raise DealImportError(f"{name}:{reader.line_num}: not CSV ({exc}); nothing was "
                              "imported") from None


def _jsonl_records(text: str, found: KnownDealsFile) -> Iterator[tuple[int, dict[str, Any]]]:
    ignored: set[str] = set()
    for line, raw in json_lines(text):
        if not raw.strip():
            continue
        try:
            value = parse_json_line(raw)
        except JsonLineError as exc:
            found.problems.append(Problem(line, str(exc)))
            continue
        if not isinstance(value, dict):
            found.problems.append(Problem(line, "not a JSON object ({\"external_id\": …})"))
            continue
        record = {str(key).strip().lower(): item for key, item in value.items()}
        ignored.update(key for key in record if key not in COLUMNS)
        yield line, record
    found.ignored = sorted(ignored)


def read_known_deals(path: Path, fmt: str | None, watchlist: Iterable[WatchlistEntry]
                     ) -> KnownDealsFile:
    """A known-deals file read and checked, row by row (DealImportError when it cannot be read
    at all: missing, not UTF-8, not CSV, no usable header)."""
    fmt = file_format(path, fmt)
    text = _read_text(path)
    found = KnownDealsFile(path.name)
    vendors = VendorNames(watchlist)
    records = (_csv_records(path.name, text, found) if fmt == "csv"
               else _jsonl_records(text, found))
    first: dict[str, int] = {}
    for line, record in records:
        try:
            row = known_deal(line, record, vendors)
        except BadRow as exc:
            found.problems.append(Problem(line, str(exc)))
            continue
        if row.external_id in first:
            found.problems.append(Problem(line, f"external_id: {row.external_id!r} again (first "
                                                f"on line {first[row.external_id]})"))
            continue
        first[row.external_id] = line
        found.rows.append(row)
    found.problems.sort(key=lambda p: p.line)
    return found


# --- loading it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """What an import did (or, dry, would do) with one row."""

    row: KnownDeal
    action: str  # added | updated | unchanged
    deal: Deal | None = None  # the deal it updates or leaves alone; None for a deal it adds
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field: before, after
    deal_id: str | None = None  # the deal's registry id (dw-000042); an added one's once added
    known: Deal | None = None  # the deal imported under its external id (`deal`, or a deal
    # merged into `deal` since)


@dataclass
class ImportReport:
    """An import of one file: what it did with each row, and what it could not read."""

    file: KnownDealsFile
    loaded: list[Loaded]
    dry_run: bool = False

    def count(self, action: str) -> int:
        return sum(1 for done in self.loaded if done.action == action)

    def summary(self) -> str:
        """"added 3, updated 1, unchanged 5, skipped 2 (bad rows)"."""
        return (f"added {self.count('added')}, updated {self.count('updated')}, unchanged "
                f"{self.count('unchanged')}, skipped {len(self.file.problems)} (bad rows)")


def _live(store: Store, deal: Deal) -> Deal:
    """The deal a merged deal lives on in (following merges); the deal itself when live."""
    while deal.merged_into:
        into = store.registry.deal(deal.merged_into)
        if into is None:
            break
        deal = into
    return deal


def plan_import(store: Store, rows: Sequence[KnownDeal]) -> list[Loaded]:
    """What loading these rows does: a new deal for an external id not seen before; for one
    seen, the fields the other registry changed since its last import (set on the deal, or on
    the deal it was merged into), or nothing."""
    known = store.registry.imported_deals(row.external_id for row in rows)
    plan: list[Loaded] = []
    for row in rows:
        if row.external_id not in known:
            plan.append(Loaded(row, "added"))
            continue
        deal, last = known[row.external_id]
        target = _live(store, deal)
        given = row.imported()
        changed = [name for name, value in given.items() if last.get(name) != value]
        if not changed:
            plan.append(Loaded(row, "unchanged", target, deal_id=target.deal_id, known=deal))
            continue
        changes = {name: (getattr(target if name in row.fields else deal, name), given[name])
                   for name in changed}
        if "stage" in changes and changes["stage"][1] in (None, "unknown"):
            del changes["stage"]  # a deal's stage follows its history: nothing clears it
        plan.append(Loaded(row, "updated", target, changes, target.deal_id, known=deal))
    return plan


def _apply(store: Store, plan: list[Loaded], reviewer: str, origin: str) -> list[Loaded]:
    batch, now = secrets.token_hex(8), utcnow()
    done: list[Loaded] = []
    for item in plan:
        row = item.row
        stamp = {"imported_from": origin, "imported_at": now, "imported_fields": row.imported()}
        if item.action == "added":
            target = store.registry.insert_deal(row.fields, reviewer, batch, extra={
                "external_id": row.external_id, "source_url": row.source_url, **stamp})
            item = Loaded(row, "added", deal_id=deal_number(target))
            stage = row.fields.get("stage")
        elif item.action == "updated":
            assert item.deal is not None and item.known is not None
            target = item.deal.id
            fields = {name: after for name, (_, after) in item.changes.items()
                      if name in row.fields}
            own = {name: after for name, (_, after) in item.changes.items()
                   if name in IMPORTED_COLUMNS}
            if item.known.id == target:
                store.registry.update_deal(target, {**fields, **own, **stamp})
            else:  # merged into another deal since: that one takes the fields, and a new
                # source_url is its too (merged_source_urls): a new version either way
                store.registry.update_deal(target, fields, touch=bool(own))
                store.registry.update_deal(item.known.id, {**own, **stamp})
            stage = fields.get("stage")
        else:
            done.append(item)
            continue
        if stage and stage != "unknown":  # the registry's word joins the stage history
            store.registry.add_stage(target, stage, None, None, reviewer, batch)
        done.append(item)
    return done


def import_known_deals(store: Store, path: Path, watchlist: Iterable[WatchlistEntry],
                       reviewer: str, fmt: str | None = None, dry_run: bool = False
                       ) -> ImportReport:
    """Read a known-deals file and load it into the registry (read_known_deals, then
    load_known_deals)."""
    return load_known_deals(store, read_known_deals(path, fmt, watchlist), reviewer, dry_run)


def load_known_deals(store: Store, found: KnownDealsFile, reviewer: str, dry_run: bool = False
                     ) -> ImportReport:
    """Load a known-deals file as read into the registry, in one transaction; reviewer: who
    imports (each new deal's confirmed_by). dry_run: only say what it would do."""
    if dry_run:
        with store.snapshot():
            return ImportReport(found, plan_import(store, found.rows), dry_run=True)
    with store.transaction():
        loaded = _apply(store, plan_import(store, found.rows), reviewer, found.name)
    logger.info("%s imported %s: %s", reviewer, found.name, ImportReport(found, loaded).summary())
    return ImportReport(found, loaded)
