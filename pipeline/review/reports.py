"""Reports: a confirmed aggregate claim ("70 deals in 41 countries") filed apart from deals.

An aggregate tells of many deals at once and names no one counterpart or country, so it is not
a deal: confirming one files a report, its claim as the sentence states it — the counts ("70
deals", "41 countries"), the scope ("worldwide", or the region it names), the vendor and the
outlet behind it. A syndicated story's copies are filed together as one report's sources.

The claim is read from the evidence sentence with the words the detector counts aggregates by
(`[aggregate]` in rules.toml or a language's vocab.toml: `count_nouns`, `scope_nouns`,
`global_words`) and the grammar's `national_scopes` (the scopes counted in nations): a number
(digits as written in any script, "1,200", or an English number word) followed within a few
words by a counted noun is a count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.errors import DealwatchError
from models.registry import ClaimCount, QueueEntry, Report, ReportSource, report_number
from pipeline.config import BASE_LANGUAGE, Config, LanguagePack
from pipeline.review.export import (
    FORMATS,
    LIST_SEPARATOR,
    csv_cell,
    csv_table,
    defuse,
    to_json,
    to_jsonl,
)
from pipeline.storage import Store
from pipeline.urls import host_of, registered_domain

AGGREGATE = "aggregate"  # the candidate kind filed as a report
# Words a count may stand before its noun: "45 Chinese-financed fibre projects".
MAX_WORDS_BETWEEN = 4
# Four digits in this range read as a year ("in 2019 Huawei built …"), not a count, unless the
# counted noun follows at once.
YEARS = range(1900, 2101)

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# Spelled-out numbers read in English sentences ("seventy deals", "forty-one countries").
ENGLISH_NUMBERS: Mapping[str, int] = {
    **{w: n for n, w in enumerate(_UNITS)}, **{w: 20 + 10 * n for n, w in enumerate(_TENS)},
    "hundred": 100, "thousand": 1000, "dozen": 12}

_TOKEN = re.compile(
    r"(?P<number>(?<![\w.,])\d+(?:[.,\u00a0\u202f]\d+)*(?!\w))"
    r"|(?P<word>[^\W\d_]+(?:['’-][^\W\d_]+)*)"
    r"|(?P<mark>[^\w\s])")


class ReportError(DealwatchError):
    """A report that cannot be found or filed as asked."""


@dataclass(frozen=True)
class ClaimWords:
    """The words a claim is read with, in one language."""

    count_nouns: tuple[str, ...]  # what is counted: deals, projects, cities
    scope_nouns: tuple[str, ...]  # where: countries, cities, governments
    global_words: tuple[str, ...]  # no one place: worldwide, across Africa
    national_scopes: frozenset[str] = frozenset()  # scopes counted in nations: countries
    number_words: Mapping[str, int] = field(default_factory=dict)  # "seventy" -> 70

    @classmethod
    def of(cls, pack: LanguagePack) -> ClaimWords:
        aggregate = pack.rules.aggregate
        return cls(tuple(aggregate.count_nouns), tuple(aggregate.scope_nouns),
                   tuple(aggregate.global_words),
                   frozenset(w.lower() for w in pack.grammar.words.national_scopes),
                   ENGLISH_NUMBERS if pack.lang == BASE_LANGUAGE else {})


@dataclass(frozen=True)
class Claim:
    """What an aggregate sentence states: its counts, the headline ones, and its scope."""

    counts: list[ClaimCount]
    deals: int | None  # the first count of a counted noun that is no scope ("70 deals")
    countries: int | None  # the first count of a national scope ("41 countries")
    scope: str | None  # the region a global phrase names, "worldwide", or None


@dataclass(frozen=True)
class _Token:
    kind: str  # number | word | mark
    text: str
    start: int
    end: int


def _tokens(sentence: str) -> list[_Token]:
    return [_Token(m.lastgroup or "mark", m.group(), m.start(), m.end())
            for m in _TOKEN.finditer(sentence)]


def _digits(text: str) -> int | None:
    """A whole number as written ("70", "1,200", "1.200", "1 200"); None for a decimal."""
    groups = re.split(r"[.,\u00a0\u202f]", text)
    if len(groups) > 1 and not all(len(g) == 3 for g in groups[1:]):
        return None  # "2.5": a decimal, no count of things
    return int("".join(groups))


def _spelled(tokens: Sequence[_Token], i: int, words: Mapping[str, int]) -> tuple[int, int] | None:
    """A number in words starting at token i ("forty-one", "two hundred and fifty"): its value
    and the index after it; None when there is none."""
    total, current, j, found = 0, 0, i, False
    while j < len(tokens) and tokens[j].kind == "word":
        parts = tokens[j].text.lower().split("-")
        if not all(p in words for p in parts):
            if found and tokens[j].text.lower() == "and" and j + 1 < len(tokens) and \
                    tokens[j + 1].text.lower().split("-")[0] in words:
                j += 1
                continue
            break
        for part in parts:
            value = words[part]
            if value == 1000:
                total, current = total + max(current, 1) * 1000, 0
            elif value == 100:
                current = max(current, 1) * 100
            else:
                current += value
        found, j = True, j + 1
    return (total + current, j) if found else None


def _numbers(tokens: Sequence[_Token], words: Mapping[str, int]) -> Iterator[tuple[int, int, int]]:
    """Each number of the sentence: (its value, its first token, the token after it)."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "number":
            value = _digits(token.text)
            if value is not None:
                yield value, i, i + 1
            i += 1
            continue
        spelled = _spelled(tokens, i, words) if token.kind == "word" else None
        if spelled:
            yield spelled[0], i, spelled[1]
            i = spelled[1]
        else:
            i += 1


def _phrases(nouns: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Nouns as token sequences in lower case, longest first ("data centres" before "centres")."""
    found = {noun: tuple(t.text.lower() for t in _tokens(noun)) for noun in nouns}
    return sorted(found.items(), key=lambda kv: -len(kv[1]))


def read_claim(sentence: str, words: ClaimWords) -> Claim:
    """The counts and scope an aggregate sentence states, as it words them."""
    tokens = _tokens(sentence)
    nouns = _phrases(dict.fromkeys((*words.count_nouns, *words.scope_nouns)))
    scopes = {n.lower() for n in words.scope_nouns}
    counts: list[ClaimCount] = []
    deals = countries = None
    for value, first, after in _numbers(tokens, words.number_words):
        if value < 2:
            continue  # "one of the projects": a count of many is two or more
        is_year = tokens[first].kind == "number" and tokens[first].text.isdigit() and \
            len(tokens[first].text) == 4 and value in YEARS
        reach = 0 if is_year else MAX_WORDS_BETWEEN
        found = _counted(tokens, after, reach, nouns)
        if found is None:
            continue
        noun, end = found
        counts.append(ClaimCount(value, noun, sentence[tokens[first].start:tokens[end - 1].end]))
        if deals is None and noun.lower() not in scopes:
            deals = value
        if countries is None and noun.lower() in words.national_scopes:
            countries = value
    return Claim(counts, deals, countries, _scope(sentence, words.global_words))


def _counted(tokens: Sequence[_Token], at: int, reach: int,
             nouns: list[tuple[str, tuple[str, ...]]]) -> tuple[str, int] | None:
    """The counted noun within `reach` words after a number (as configured, and the token after
    it); None when a mark or another number comes first."""
    for k in range(at, min(at + reach + 1, len(tokens))):
        if tokens[k].kind != "word":
            return None
        for noun, parts in nouns:
            if tuple(t.text.lower() for t in tokens[k:k + len(parts)]) == parts:
                return noun, k + len(parts)
    return None


def _scope(sentence: str, global_words: Iterable[str]) -> str | None:
    """Where the claim spans: the place a global phrase names ("across Latin America": Latin
    America), "worldwide" for one that names none ("around the world", "abroad"), else None."""
    found: list[tuple[int, str]] = []
    for phrase in global_words:
        match = re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", sentence, re.IGNORECASE)
        if match:
            found.append((match.start(), phrase))
    named = [_named_place(phrase) for _, phrase in sorted(found)]
    return next((name for name in named if name), "worldwide" if found else None)


def _named_place(phrase: str) -> str | None:
    """The place a configured global phrase names: its words from the first capitalised one
    ("en toda América Latina": América Latina; "à travers l'Afrique": Afrique)."""
    words = phrase.split()
    for i, word in enumerate(words):
        tail = re.split(r"['’]", word)[-1]
        if tail[:1].isupper():
            return " ".join([tail, *words[i + 1:]])
    return None


class ClaimReader:
    """Reads claims in the language of their article, with that language's words (English when
    there is no pattern folder for it)."""

    def __init__(self, config: Config):
        self.config = config
        self._words: dict[str, ClaimWords] = {}

    def words(self, language: str | None) -> ClaimWords:
        lang = language if language in self.config.languages else BASE_LANGUAGE
        if lang not in self._words:
            self._words[lang] = ClaimWords.of(self.config.pack(lang))
        return self._words[lang]

    def read(self, sentence: str, language: str | None) -> Claim:
        return read_claim(sentence, self.words(language))


# --- filing ---------------------------------------------------------------------------------


def outlet_of(candidate: QueueEntry) -> str | None:
    """Who published the article: its site's name, else its URL's registered domain."""
    if candidate.site and candidate.site.strip():
        return candidate.site.strip()
    host = host_of(candidate.url)
    return registered_domain(host) if host else None


def report_fields(lead: QueueEntry, claim: Claim) -> dict[str, Any]:
    """What a new report records of its lead candidate and the claim read from it."""
    return {
        "candidate_id": lead.id, "article_id": lead.article_id, "vendor": lead.vendor,
        "vendors": list(lead.vendors or ([lead.vendor] if lead.vendor else [])),
        "counts": claim.counts, "deals": claim.deals, "countries": claim.countries,
        "scope": claim.scope, "deal_types": list(lead.deal_types or []), "year": lead.year,
        "sentence": lead.sentence, "outlet": outlet_of(lead), "url": lead.url,
        "title": lead.title, "published": lead.published, "notes": lead.note,
    }


def file_report(store: Store, candidates: Sequence[QueueEntry], reviewer: str, batch: str,
                claims: ClaimReader) -> int:
    """File confirmed aggregate candidates (one story's copies) as one report; its id."""
    lead = candidates[0]
    if lead.kind != AGGREGATE:
        raise ReportError(f"candidate #{lead.id} is a deal, not an aggregate claim")
    claim = claims.read(lead.sentence, lead.language)
    report_id = store.reports.insert_report(report_fields(lead, claim), reviewer, batch)
    store.reports.link(report_id, [c.id for c in candidates])
    return report_id


def settle_reports(store: Store, report_ids: Iterable[int | None]) -> None:
    """After candidates left these reports: a report none is left in is withdrawn."""
    for report_id in dict.fromkeys(r for r in report_ids if r is not None):
        if not store.reports.sources(report_id):
            store.reports.delete_report(report_id)


# The candidate's fields a report keeps, and follows when a reviewer corrects them.
FOLLOWED_FIELDS = ("vendor", "vendors", "deal_types", "year")


def report_changed(store: Store, candidate: QueueEntry) -> None:
    """A confirmed aggregate's fields were corrected (or the correction undone): the report it
    leads follows."""
    if candidate.status != "confirmed" or not candidate.report_id:
        return
    report = store.reports.report(candidate.report_id)
    if report is None or report.candidate_id != candidate.id:
        return
    store.reports.update_report(report.id, {
        name: getattr(candidate, name) for name in FOLLOWED_FIELDS
        if getattr(candidate, name) != getattr(report, name)})


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportView:
    """One report as its page and `reports show` give it: the claim and where it came from."""

    report: Report
    sources: list[ReportSource]

    def to_dict(self) -> dict[str, Any]:
        return report_record(self.report, self.sources)


def report_view(store: Store, report_id: int) -> ReportView:
    with store.snapshot():
        report = store.reports.report(report_id)
        if report is None:
            raise ReportError(f"no report {report_number(report_id)}")
        return ReportView(report, store.reports.sources(report_id))


# The export's fields, in order (README, "Reports: aggregate claims"). New ones go at the end.
REPORT_RECORD_FIELDS = (
    "report_id", "vendor", "vendors", "counts", "deals", "countries", "scope", "deal_types",
    "year", "sentence", "outlet", "url", "title", "published", "sources", "notes",
    "confirmed_by", "confirmed_at", "version")
# CSV: lists joined, `counts` as written ("70 deals; 41 countries"), `sources` their URLs.
REPORT_TEXT_COLUMNS = ("vendor", "sentence", "outlet", "url", "title", "sources", "notes",
                       "confirmed_by")


def report_record(report: Report, sources: Sequence[ReportSource]) -> dict[str, Any]:
    """A report as exported: REPORT_RECORD_FIELDS, `sources` the URLs of its story's copies."""
    record = {
        "report_id": report.report_id, "vendor": report.vendor, "vendors": list(report.vendors),
        "counts": [{"count": c.count, "noun": c.noun, "text": c.text} for c in report.counts],
        "deals": report.deals, "countries": report.countries, "scope": report.scope,
        "deal_types": list(report.deal_types), "year": report.year,
        "sentence": report.sentence, "outlet": report.outlet, "url": report.url,
        "title": report.title, "published": report.published[:10] if report.published else None,
        "sources": [s.url for s in sources if s.url], "notes": report.notes,
        "confirmed_by": report.confirmed_by, "confirmed_at": report.confirmed_at,
        "version": report.version,
    }
    assert tuple(record) == REPORT_RECORD_FIELDS
    return record


def report_records(store: Store, vendor: str | None = None) -> list[dict[str, Any]]:
    """Every report as exported, in number order; vendor: only those naming it."""
    with store.snapshot():  # one consistent read while reviewers keep confirming
        reports, sources = store.reports.reports(vendor), store.reports.sources_by_report()
    return [report_record(r, sources.get(r.id, [])) for r in reports]


def report_csv_row(record: Mapping[str, Any]) -> dict[str, str]:
    """A report record flattened for a spreadsheet: lists joined, `counts` as written ("70
    deals; 41 countries"), `sources` their URLs; cells from pages or people defused."""
    flat = {name: csv_cell(record[name]) for name in REPORT_RECORD_FIELDS}
    flat["counts"] = LIST_SEPARATOR.join(f"{c['count']} {c['noun']}" for c in record["counts"])
    for name in REPORT_TEXT_COLUMNS:
        flat[name] = defuse(flat[name])
    return flat


def reports_csv(records: Sequence[Mapping[str, Any]]) -> bytes:
    return csv_table((report_csv_row(r) for r in records), REPORT_RECORD_FIELDS)


REPORT_WRITERS: dict[str, Callable[[Sequence[Mapping[str, Any]]], bytes]] = {
    "csv": reports_csv, "json": to_json, "jsonl": to_jsonl}


def export_reports(store: Store, fmt: str, vendor: str | None = None) -> tuple[bytes, int]:
    """Every report (vendor: those naming it) in an export format (FORMATS, as the registry's
    export); the bytes and how many reports."""
    if fmt not in REPORT_WRITERS:
        raise ReportError(f"format: one of {', '.join(FORMATS)}, not {fmt!r}")
    records = report_records(store, vendor)
    return REPORT_WRITERS[fmt](records), len(records)
