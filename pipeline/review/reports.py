"""Reports: a confirmed aggregate claim ("70 deals in 41 countries") filed apart from deals.

An aggregate tells of many deals at once and names no one counterpart or country, so it is not
a deal: confirming one files a report, its claim as the sentence states it — the counts ("70
deals", "41 countries"), the scope ("worldwide", or the region it names), the vendor and the
outlet behind it. A syndicated story's copies are filed together as one report's sources.

The claim is read from the evidence sentence with the words the detector counts aggregates by
(`[aggregate]` in rules.toml or a language's vocab.toml: `count_nouns`, `scope_nouns`,
`global_words`) and the grammar's `national_scopes` (the scopes counted in nations): a number
(digits as written in any script, "1,200", or an English number word) followed within a few
words by a counted noun is a count. Only a count of `deal_nouns` ("70 deals", "45 projects") is
the claim's number of deals; "3,000 sites" is a count, not deals.

A report a decision takes back is withdrawn, not deleted: undoing the decision restores it as it
was, and confirming its story again files into it (rp-000001 stays rp-000001). Deals filed from
aggregate claims before reports existed become reports with `refile_deals`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.errors import DealwatchError
from models.registry import (
    ClaimCount,
    Deal,
    QueueEntry,
    Report,
    ReportSource,
    ReviewEvent,
    report_number,
)
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
from pipeline.storage import Store, utcnow
from pipeline.urls import host_of, registered_domain

logger = logging.getLogger(__name__)

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
    deal_nouns: frozenset[str] = frozenset()  # counted nouns that name deals: deals, projects

    @classmethod
    def of(cls, pack: LanguagePack) -> ClaimWords:
        aggregate = pack.rules.aggregate
        return cls(tuple(aggregate.count_nouns), tuple(aggregate.scope_nouns),
                   tuple(aggregate.global_words),
                   frozenset(w.lower() for w in pack.grammar.words.national_scopes),
                   ENGLISH_NUMBERS if pack.lang == BASE_LANGUAGE else {},
                   frozenset(w.lower() for w in aggregate.deal_nouns))


@dataclass(frozen=True)
class Claim:
    """What an aggregate sentence states: its counts, the headline ones, and its scope."""

    counts: list[ClaimCount]
    deals: int | None  # the first count of a noun that names deals ("70 deals", not "70 sites")
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
        if deals is None and noun.lower() in words.deal_nouns:
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


def report_fields(lead: QueueEntry, claims: ClaimReader) -> dict[str, Any]:
    """What a new report records of its lead candidate and the claim read from it (in its
    article's language)."""
    claim = claims.read(lead.sentence, lead.language)
    return {
        "candidate_id": lead.id, "article_id": lead.article_id, "vendor": lead.vendor,
        "vendors": list(lead.vendors or ([lead.vendor] if lead.vendor else [])),
        "counts": claim.counts, "deals": claim.deals, "countries": claim.countries,
        "scope": claim.scope, "deal_types": list(lead.deal_types or []), "year": lead.year,
        "sentence": lead.sentence, "outlet": outlet_of(lead), "url": lead.url,
        "title": lead.title, "published": lead.published, "notes": lead.note,
    }


@dataclass(frozen=True)
class Filed:
    """Where a confirmation filed a story: the report, and its state before when the story's
    lead had filed it already (what undoing the confirmation puts back; None: a new report)."""

    report_id: int
    before: dict[str, Any] | None = None


def file_report(store: Store, candidates: Sequence[QueueEntry], reviewer: str, batch: str,
                claims: ClaimReader) -> Filed:
    """File confirmed aggregate candidates (one story's copies) as one report. When the story's
    lead filed a report before (since withdrawn, or one it is confirmed into again), it files
    into that one: the same number, its fields read afresh, no longer withdrawn, a new
    version."""
    lead = candidates[0]
    if lead.kind != AGGREGATE:
        raise ReportError(f"candidate #{lead.id} is a deal, not an aggregate claim")
    fields = report_fields(lead, claims)
    earlier = store.reports.filed_from(lead.id)
    if earlier is None:
        filed = Filed(store.reports.insert_report(fields, reviewer, batch))
    else:
        filed = Filed(earlier.id, store.reports.state(earlier.id))
        store.reports.refile(earlier.id, fields, reviewer, batch)
    store.reports.link(filed.report_id, [c.id for c in candidates])
    return filed


def refile_report(store: Store, candidates: Sequence[QueueEntry], claims: ClaimReader,
                  batch: str) -> int:
    """File copies whose report is gone (deleted before reports were withdrawn, migration 14)
    anew, confirmed by whom and when their lead was: what undoing a decision that took them
    out of it restores."""
    lead = candidates[0]
    report_id = store.reports.insert_report(
        report_fields(lead, claims), lead.reviewed_by or "", batch, lead.reviewed_at)
    store.reports.link(report_id, [c.id for c in candidates])
    return report_id


def settle_reports(store: Store, report_ids: Iterable[int | None]) -> None:
    """After candidates left these reports: a report none is left in is withdrawn."""
    for report_id in dict.fromkeys(r for r in report_ids if r is not None):
        if not store.reports.sources(report_id):
            store.reports.withdraw(report_id)


def restore_report(store: Store, report_id: int, candidate_id: int) -> None:
    """Undoing a decision: the candidate back in the report it was in, filed again (no longer
    withdrawn) with its number, fields and confirmation as they were."""
    store.reports.link(report_id, [candidate_id])
    store.reports.reinstate(report_id)


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


# --- deals filed from aggregate claims before reports existed -------------------------------


@dataclass(frozen=True)
class Story:
    """The copies one confirmation filed (lead first), and that confirmation's batch."""

    batch: str | None
    copies: list[QueueEntry]


@dataclass(frozen=True)
class Refiling:
    """A deal filed from aggregate claims before reports existed (migration 12), and the
    reports its stories become: one each, in their order."""

    deal: Deal
    stories: list[Story]
    report_ids: list[int]  # the numbers they take (in a dry run: would take)


def _stories(store: Store, sources: Sequence[tuple[int, str | None]]) -> list[Story]:
    """A deal's sources as the stories their confirmations filed: the copies one batch added
    (a source without one is a story of its own)."""
    found: dict[str, Story] = {}
    for candidate_id, batch in sources:
        entry = store.candidates.candidate(candidate_id)
        if entry is not None:
            found.setdefault(batch or f"#{candidate_id}", Story(batch, [])).copies.append(entry)
    return list(found.values())


def _refile_story(store: Store, deal: Deal, story: Story, whole: bool,
                  claims: ClaimReader) -> int:
    """One story of an aggregate deal filed as the report its confirmation would file now:
    confirmed by whom and when its lead was, under that confirmation's batch (so that undoing
    it withdraws the report), its notes naming the deal it was."""
    lead = story.copies[0]
    fields = report_fields(lead, claims)
    if whole:  # the deal was this story alone: the registry's corrections of it carry over
        fields.update(vendor=deal.vendor, vendors=list(deal.vendors),
                      deal_types=list(deal.deal_types), year=deal.year)
    refiled = (f"Filed as deal {deal.deal_id} before reports existed; refiled as a report by "
               f"`dealwatch reports refile` at {utcnow()}.")
    fields["notes"] = "\n".join(n for n in ((deal.notes if whole else lead.note), refiled) if n)
    report_id = store.reports.insert_report(
        fields, lead.reviewed_by or deal.confirmed_by or "", story.batch,
        lead.reviewed_at or deal.confirmed_at)
    store.reports.link(report_id, [c.id for c in story.copies])
    return report_id


def refile_deals(store: Store, claims: ClaimReader, apply: bool = False) -> list[Refiling]:
    """The deals filed from aggregate claims before reports existed (every source an aggregate
    candidate; imported and merged deals left out), each with the reports its stories become.
    apply: file them so, in one transaction, and withdraw the deals (their numbers are never
    reused); else nothing changes and the numbers are the ones they would take now."""
    plan: list[Refiling] = []
    with store.transaction():
        number = store.reports.next_number()
        for deal_id, sources in store.reports.aggregate_deals().items():
            deal = store.registry.deal(deal_id)
            assert deal is not None  # aggregate_deals reads live deals
            stories = _stories(store, sources)
            if apply:
                ids = [_refile_story(store, deal, story, len(stories) == 1, claims)
                       for story in stories]
                store.registry.delete_deal(deal_id)
                logger.info("deal %s (filed from an aggregate claim) refiled as report %s",
                            deal.deal_id, ", ".join(report_number(i) for i in ids))
            else:
                ids = list(range(number, number + len(stories)))
                number += len(stories)
            plan.append(Refiling(deal, stories, ids))
    return plan


def refile_hint(store: Store) -> str | None:
    """A line for `status` and `migrate` when deals were filed from aggregate claims before
    reports existed; None when none were."""
    found = len(store.reports.aggregate_deals())
    if not found:
        return None
    return (f"{found} deal{'s were' if found > 1 else ' was'} filed from aggregate claims before "
            "reports existed: `dealwatch reports refile` shows the reports "
            f"{'they' if found > 1 else 'it'} would become")


# --- reading --------------------------------------------------------------------------------


DECISION_WORDS = {"reject": "rejected", "defer": "deferred", "confirm": "confirmed again",
                  "undo": "undid the confirmation of"}


def describe_withdrawal(event: ReviewEvent | None) -> str:
    """The decision that withdrew a report, in words: "bob rejected #12 (not_a_deal)"."""
    if event is None:
        return "a decision no longer on record"
    reason = f" ({event.reason})" if event.reason else ""
    return (f"{event.reviewer} {DECISION_WORDS.get(event.decision, event.decision)} "
            f"#{event.candidate_id}{reason}")


@dataclass(frozen=True)
class ReportView:
    """One report as its page and `reports show` give it: the claim and where it came from;
    for a withdrawn report, the decision that withdrew it."""

    report: Report
    sources: list[ReportSource]
    withdrawal: ReviewEvent | None = None

    @property
    def withdrawn(self) -> str | None:
        """ "withdrawn at T, bob rejected #12 …" for a withdrawn report; None for a filed one."""
        if self.report.withdrawn_at is None:
            return None
        return (f"withdrawn at {self.report.withdrawn_at}: "
                f"{describe_withdrawal(self.withdrawal)}")

    def to_dict(self) -> dict[str, Any]:
        record = report_record(self.report, self.sources)
        if self.report.withdrawn_at is not None:  # never in an export: it lists filed ones
            event = self.withdrawal
            record["withdrawn_at"] = self.report.withdrawn_at
            record["withdrawn_by"] = None if event is None else {
                "reviewer": event.reviewer, "decision": event.decision,
                "candidate_id": event.candidate_id, "reason": event.reason,
                "decided_at": event.decided_at}
        return record


def report_view(store: Store, report_id: int) -> ReportView:
    with store.snapshot():
        report = store.reports.report(report_id)
        if report is None:
            raise ReportError(f"no report {report_number(report_id)}")
        withdrawal = store.reports.withdrawal(report) if report.withdrawn_at else None
        return ReportView(report, store.reports.sources(report_id), withdrawal)


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
