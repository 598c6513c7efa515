"""The review queue and reviewing from the terminal: queue, review list|show|confirm|reject|…"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from models.registry import Deal, QueueEntry, report_number
from pipeline.cli.common import (
    DEAL,
    State,
    country_option,
    echo_json,
    lang_option,
    pass_state,
    reviewer_option,
    search_option,
    set_option,
    sort_options,
    vendor_option,
)
from pipeline.review.decisions import REJECT_REASONS, Outcome, bulk_reject, decide, edit, undo
from pipeline.review.present import country_name, language_note, money
from pipeline.review.registry import known_matches
from pipeline.review.reports import ClaimReader
from pipeline.review.views import (
    QUEUE_JSON_FIELDS,
    CandidateView,
    candidate_view,
    deal_label,
    outcome_view,
    queue_json,
)
from pipeline.storage import CANDIDATE_STATUSES, QueueQuery, Store
from pipeline.storage.queue import QUEUE_SORTS


def render_queue(entries: list[QueueEntry], out: Callable[[str], None],
                 total: int | None = None, matches: Mapping[int, Deal] | None = None) -> None:
    """The review queue as text: one block per candidate, best first, then how many of how
    many entries it showed (when the total is given). matches: the deal a candidate would be
    filed under, confirmed as it is (`known_matches`)."""
    if not entries:
        out("the queue is empty" if not total else f"0 of {total:,} shown")
        return
    for rank, entry in enumerate(entries, 1):
        vendors = ", ".join(entry.vendors or ([entry.vendor] if entry.vendor else []))
        counterpart = entry.counterpart or "-"
        if entry.counterpart_type:
            counterpart += f" ({entry.counterpart_type})"
        types = ", ".join(entry.deal_types or []) or "-"
        fields = [
            f"{entry.score:.2f}",
            entry.kind,
            f"vendor: {vendors or '-'}",
            f"country: {entry.country or '-'}",
            f"counterpart: {counterpart}",
            f"type: {types}",
            f"stage: {entry.stage or '-'}",
        ]
        if entry.language:
            fields.insert(2, f"lang: {entry.language}")
        if entry.value is not None:
            fields.append(f"value: {money(entry.value, entry.currency)}")
        if entry.year:
            fields.append(f"year: {entry.year}")
        out(f"{rank:>3}. [{entry.status}] #{entry.id}  " + "  ".join(fields))
        out(f"     “{' '.join(entry.sentence.split())}”")
        out(f"     {entry.url}")
        for copy in [c for c in entry.copies if c.url != entry.url]:
            site = f" ({copy.site})" if copy.site else ""
            out(f"     also: {copy.url}{site}")
        match = (matches or {}).get(entry.id)
        if match is not None:
            ids = ", ".join(str(known.external_id) for known in match.known_deals())
            known = f" (known: {ids})" if ids else ""
            out(f"     matches {match.deal_id}{known}: confirming files it there")
    if total is not None:
        out(f"{len(entries):,} of {total:,} shown" + (" (--limit 0 shows all)"
                                                       if len(entries) < total else ""))


def _listing_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options `queue` and `review list` share: how many, which scores, language, search."""
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
                     help="How many (0 for all)."),
        click.option("--all", "show_all", is_flag=True,
                     help="Also the candidates scored below the queue threshold (hidden by "
                          "default)."),
        click.option("--min-score", type=click.FloatRange(0, 1), default=None, metavar="P",
                     help="Only candidates scored at least P, below the threshold too (implies "
                          "--all)."),
        lang_option("Only candidates from articles in this language (ISO 639-1: es, pt, fr, en)."),
        search_option(),
        sort_options(QUEUE_SORTS, "The order (ties by candidate id; default score, best "
                     "first)."),
        click.option("--json", "as_json", is_flag=True, help="JSON for scripts."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@click.option("--status", type=click.Choice([*CANDIDATE_STATUSES, "all"]), default="pending",
              show_default=True, help="Which candidates to list.")
@click.option("--kind", type=click.Choice(["deal", "aggregate"]), default=None,
              help="Only deals or only aggregates.")
@_listing_options
@pass_state
def queue(state: State, status: str, kind: str | None, limit: int, show_all: bool,
          min_score: float | None, language: str | None, search: str | None, sort: str | None,
          descending: bool | None, as_json: bool) -> None:
    """The review queue: candidates ranked by score, with their evidence.

    Pending candidates scored below the queue threshold (rules.toml [scoring] threshold) are
    kept but hidden; --all or --min-score shows them.

    \b
    Example:
        dealwatch queue --limit 10
        dealwatch queue --min-score 0.2       # the weak candidates too
        dealwatch queue --lang es             # from Spanish articles only
        dealwatch queue --search "fibre backbone"
        dealwatch queue --status confirmed --json | jq '.[].vendor'
    """
    query = QueueQuery(status=None if status == "all" else status, kind=kind, language=language,
                       search=search, limit=limit or None, sort=sort or "score",
                       descending=descending, hidden=show_all or min_score is not None,
                       min_score=min_score)
    with state.store() as store, store.snapshot():
        rows = store.candidates.queue(query)
        total = store.candidates.queue_count(query) if not as_json else 0
        hidden = 0 if show_all or min_score is not None or as_json else store.candidates.count_hidden()
        matches = known_matches(store, rows)
    if hidden:
        click.echo(f"({hidden} pending candidates scored below the queue threshold are hidden: "
                   "--all shows them)", err=True)
    if as_json:
        echo_json(queue_json(rows, matches))
    else:
        render_queue(rows, click.echo, total, matches)


# --- review from the terminal ---------------------------------------------------------------
#
# The same functions as the web UI (pipeline.review.decisions, pipeline.review.registry), the
# same audit. No run lock: reviewing goes on while the nightly run writes (WAL and the busy
# timeout share the file).


def _print_outcomes(store: Store, outcomes: list[Outcome], as_json: bool) -> None:
    if as_json:
        echo_json([{**outcome_view(store, o),
                    "report_id": report_number(o.report_id) if o.report_id else None}
                   for o in outcomes])
        return
    for o in outcomes:
        lead, copies = o.candidate_ids[0], o.candidate_ids[1:]
        verb = {"undo": f"undone: #{lead} is {o.status} again"}.get(o.decision, f"{o.status} #{lead}")
        line = verb + (f" with its {len(copies)} cop{'y' if len(copies) == 1 else 'ies'} "
                       f"({', '.join(f'#{c}' for c in copies)})" if copies else "")
        label = deal_label(store, o.deal_id)
        if label:
            line += f"; filed under {label}"
        if o.report_id:
            line += f"; filed as report {report_number(o.report_id)} (an aggregate claim)"
        click.echo(line)


REVIEW_JSON_FIELDS = (*QUEUE_JSON_FIELDS, "version", "reviewed_by", "reviewed_at", "reason", "note",
                      "deal_id")


@click.group()
@reviewer_option
@pass_state
def review(state: State, reviewer: str | None) -> None:
    """Review candidates from the terminal: list, show, confirm, reject, defer, edit, undo.

    Decisions go through the same code as the web UI and land in the same audit (`reviews`),
    under --reviewer. A syndicated story's copies are decided with it. Reviews work while the
    nightly run goes on.

    \b
    Example:
        dealwatch review list --vendor huawei --country KE
        dealwatch review show 12
        dealwatch --db data/dealwatch.db review --reviewer ann confirm 12 --set stage=signed
        dealwatch review reject 13 --reason not_a_deal --note "a phone launch"
        dealwatch review undo
    """
    state.reviewer = reviewer


@review.command("list")
@click.option("--status", type=click.Choice([*CANDIDATE_STATUSES, "all"]), default="pending",
              show_default=True, help="Which candidates to list.")
@vendor_option()
@country_option()
@_listing_options
@pass_state
def review_list(state: State, status: str, vendor: str | None, country: str | None, limit: int,
                show_all: bool, min_score: float | None, language: str | None,
                search: str | None, sort: str | None, descending: bool | None,
                as_json: bool) -> None:
    """Candidates best first, one entry per story (its copies listed with it).

    \b
    Example:
        dealwatch review list --status deferred
        dealwatch review list --lang pt --country AO
        dealwatch review list --search "Safaricom" --status all
        dealwatch review list --sort date          # newest article first
        dealwatch review list --vendor zte --json | jq '.[].id'
    """
    query = QueueQuery(status=None if status == "all" else status, vendor=vendor,
                       country=country, language=language, search=search,
                       limit=limit or None, sort=sort or "score", descending=descending,
                       hidden=show_all or min_score is not None, min_score=min_score)
    with state.store() as store, store.snapshot():
        rows = store.candidates.queue(query)
        total = store.candidates.queue_count(query) if not as_json else 0
        matches = known_matches(store, rows)
    if as_json:
        echo_json(queue_json(rows, matches, REVIEW_JSON_FIELDS))
    else:
        render_queue(rows, click.echo, total, matches)


def _render_candidate(view: CandidateView, out: Callable[[str], None]) -> None:
    c, ev = view.candidate, view.evidence
    counterpart = (c.counterpart or "-") + (f" ({c.counterpart_type})" if c.counterpart_type
                                             else "")
    name = country_name(c.country)
    country = (c.country or "-") + (f" ({name})" if name else "")
    out(f"#{c.id} [{c.status}] version {c.version}  score {c.score:.2f}  {c.kind}"
        + (f"  deal {view.deal.deal_id}" if view.deal else ""))
    out(f"  vendor: {', '.join(c.vendors or []) or c.vendor or '-'}  country: {country}  "
        f"counterpart: {counterpart}")
    amount = money(c.value, c.currency)
    out(f"  type: {', '.join(c.deal_types or []) or '-'}  stage: {c.stage or '-'}"
        + (f"  value: {amount}" if amount else "") + (f"  year: {c.year}" if c.year else ""))
    if c.reasons:
        out(f"  why this score: {'; '.join(c.reasons)}")
    if not c.queued:
        out("  below the queue threshold: hidden from the queue's default view")
    if c.reviewed_by:
        out(f"  decided by {c.reviewed_by} at {c.reviewed_at}" + (f" ({c.reason})" if c.reason
                                                                   else ""))
    if c.note:
        out(f"  note: {c.note}")
    out("")
    out(f"{c.title or '(untitled)'}")
    out("  " + ", ".join(x for x in (c.site, c.published, c.author and f"by {c.author}") if x)
        or "  (no date or site)")
    out(f"  language: {language_note(c.language, c.language_declared, c.language_source)}")
    out(f"  {c.url}")
    out("")
    before = f"…{ev.before} " if ev.before else ""
    after = f" {ev.after}…" if ev.after else ""
    out(f"evidence: {before}“{' '.join(ev.sentence.split())}”{after}")
    names = sorted({f"{e.text} ({e.label}{' ' + e.id if e.id else ''})" for e in view.entities})
    if names:
        out(f"entities: {', '.join(names)}")
    for copy in view.other_copies:
        out(f"copy: {copy.url}" + (f" ({copy.site})" if copy.site else "")
            + (" (exact duplicate)" if copy.copy == "exact duplicate" else ""))
    out("")
    if view.suggestions:
        out("registry (confirm --deal ID files it there):")
        for s in view.suggestions:
            d = s.deal
            out(f"  {d.deal_id}  {s.score:.2f}  {d.counterpart or '-'}, "
                f"{', '.join(d.deal_types or []) or '-'}, {d.stage or '-'}, reported "
                f"{d.first_reported or '?'} – {d.last_reported or '?'}  ({s.why})")
    elif view.deal:  # filed, and its own deal is no suggestion
        out("registry: no other deal of this vendor in this country")
    else:
        out("registry: no deal of this vendor in this country yet (confirm starts one)")
    if view.history:
        out("history:")
        for h in view.history:
            edits = "; ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in (h.edits or {}).items())
            out(f"  {h.decided_at}  {h.reviewer}  {h.decision}"
                + (f" ({h.reason})" if h.reason else "")
                + (f"  {edits}" if edits else "") + (f"  note: {h.note}" if h.note else ""))


@review.command("show")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_show(state: State, candidate_id: int, as_json: bool) -> None:
    """One candidate with its article, evidence in context, copies, the registry deals it may
    belong to, and its decision history.

    \b
    Example:
        dealwatch review show 12
        dealwatch review show 12 --json | jq .suggestions
    """
    with state.store() as store:
        view = candidate_view(store, candidate_id)
    if as_json:
        echo_json(view.to_dict())
    else:
        _render_candidate(view, click.echo)


_VERSION_HELP = ("Only if the candidate is still at this version (from `review show`); "
                 "otherwise exit 1 and change nothing.")


@review.command("confirm")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--deal", "deal", type=DEAL, default=None,
              help="File it under this registry deal (default: the matching deal, or a new one).")
@click.option("--new-deal", is_flag=True, help="Start a new deal even if one matches.")
@set_option("Correct a field first (repeatable): vendor, vendors, country, counterpart, "
             "counterpart_type, deal_type, deal_types, stage, value, currency, year.")
@click.option("--note", default=None, help="A note for the audit and the deal.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_confirm(state: State, candidate_id: int, deal: int | None, new_deal: bool,
                   edits: dict[str, str], note: str | None, expect_version: int | None,
                   as_json: bool) -> None:
    """Confirm a candidate (and its copies) and file it in the registry. An aggregate claim
    ("70 deals in 41 countries") is filed as a report (`dealwatch reports`), not a deal.

    \b
    Example:
        dealwatch review confirm 12
        dealwatch review confirm 14 --deal dw-000003 --set stage=completed
        dealwatch review confirm 15 --new-deal --set "counterpart=Kenya Power" --note "2nd phase"
    """

    if deal is not None and new_deal:
        raise click.UsageError("--deal and --new-deal exclude each other")
    with state.store() as store:
        outcome = decide(store, candidate_id, "confirm", state.reviewer_name,
                         version=expect_version, note=note, edits=edits,
                         deal_id="new" if new_deal else deal, known_vendors=state.config.vendor_ids(),
                         claims=ClaimReader(state.config))
        _print_outcomes(store, [outcome], as_json)


@review.command("reject")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--reason", required=True, type=click.Choice(REJECT_REASONS), help="Why.")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_reject(state: State, candidate_id: int, reason: str, note: str | None,
                  expect_version: int | None, as_json: bool) -> None:
    """Reject a candidate (and its copies) with a reason.

    \b
    Example:
        dealwatch review reject 13 --reason aggregate
        dealwatch review reject 16 --reason other --note "a trade fair, not a deal"
    """

    with state.store() as store:
        outcome = decide(store, candidate_id, "reject", state.reviewer_name,
                         version=expect_version, reason=reason, note=note)
        _print_outcomes(store, [outcome], as_json)


@review.command("defer")
@click.argument("candidate_id", metavar="ID", type=int)
@click.option("--note", default=None, help="What to find out first.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_defer(state: State, candidate_id: int, note: str | None, expect_version: int | None,
                 as_json: bool) -> None:
    """Put a candidate (and its copies) aside to decide later.

    \b
    Example:
        dealwatch review defer 17 --note "wait for the ministry's statement"
        dealwatch review list --status deferred
    """

    with state.store() as store:
        outcome = decide(store, candidate_id, "defer", state.reviewer_name,
                         version=expect_version, note=note)
        _print_outcomes(store, [outcome], as_json)


@review.command("edit")
@click.argument("candidate_id", metavar="ID", type=int)
@set_option("A field and its corrected value (repeatable; an empty value clears it).")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--expect-version", type=int, default=None, metavar="N", help=_VERSION_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_edit(state: State, candidate_id: int, edits: dict[str, str], note: str | None,
                expect_version: int | None, as_json: bool) -> None:
    """Correct a candidate's fields without deciding it; the audit keeps the old values.

    \b
    Example:
        dealwatch review edit 12 --set country=UG --set "counterpart=Uganda Telecom"
        dealwatch review edit 12 --set deal_types=cloud,data_centre --set value=12500000
    """

    with state.store() as store:
        outcome = edit(store, candidate_id, state.reviewer_name, edits, version=expect_version,
                       note=note, known_vendors=state.config.vendor_ids())
        if as_json:
            _print_outcomes(store, [outcome], as_json)
        else:
            click.echo(f"edited #{candidate_id} ({', '.join(edits) or 'note'}); it stays "
                       f"{outcome.status}")


@review.command("undo")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_undo(state: State, as_json: bool) -> None:
    """Take back your last decision or edit (statuses, fields and the registry as they were).

    Only review decisions: when your last change was a registry correction (a merge, split or
    deal edit), this names it and `dealwatch deals undo` takes it back first.

    \b
    Example:
        dealwatch review --reviewer ann undo
    """

    with state.store() as store:
        outcome = undo(store, state.reviewer_name, ClaimReader(state.config))
        _print_outcomes(store, [outcome], as_json)


@review.command("bulk-reject")
@click.argument("candidate_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--reason", required=True, type=click.Choice(REJECT_REASONS), help="Why.")
@click.option("--note", default=None, help="A note for the audit.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_state
def review_bulk_reject(state: State, candidate_ids: tuple[int, ...], reason: str,
                       note: str | None, as_json: bool) -> None:
    """Reject several candidates (each with its copies) for one reason; all or none.

    \b
    Example:
        dealwatch review bulk-reject 21 22 23 --reason domestic
        dealwatch review list --country CN --json | jq '.[].id' \\
            | xargs dealwatch review bulk-reject --reason domestic
    """

    with state.store() as store:
        outcomes = bulk_reject(store, list(candidate_ids), state.reviewer_name, reason, note)
        _print_outcomes(store, outcomes, as_json)


COMMANDS = (queue, review)
