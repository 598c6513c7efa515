"""The registry from the terminal: deals list|show|edit|merge|split|undo|source-official, export."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click

from models.config import DEAL_TYPES, STAGES
from models.registry import CONFIDENCE_GRADES
from pipeline.cli.common import (
    DEAL,
    State,
    country_option,
    echo_json,
    fail,
    pass_state,
    reviewer_option,
    search_option,
    set_option,
    sort_options,
    table_lines,
    vendor_option,
    write_output,
    year_option,
)
from pipeline.review.corrections import edit_deal
from pipeline.review.export import FORMATS as EXPORT_FORMATS
from pipeline.review.export import (
    ExportError,
    RegistryRecord,
    export_registry,
    parse_since,
    push_registry,
)
from pipeline.review.imports import FORMATS as IMPORT_FORMATS
from pipeline.review.imports import load_known_deals, read_known_deals
from pipeline.review.present import money
from pipeline.review.registry import (
    describe_correction,
    merge_deals,
    official_source_ids,
    set_source_official,
    split_sources,
    undo_correction,
)
from pipeline.review.views import (
    DEAL_SORTS,
    CorrectionEntry,
    WeighedDeal,
    deal_label,
    deal_listing,
    deal_summary,
    deal_view,
    field_text,
    merge_view,
)
from pipeline.storage.deal_query import DealQuery

logger = logging.getLogger(__name__)


def _render_deal(record: RegistryRecord, out: Callable[[str], None], merged_into: str | None,
                 candidates: dict[str | None, list[int]],
                 corrections: list[CorrectionEntry] | None = None,
                 official: frozenset[int] = frozenset()) -> None:
    counterpart = (record["counterpart"] or "-") + (
        f" ({record['counterpart_type']})" if record["counterpart_type"] else "")
    amount = money(record["value"], record["currency"])
    out(f"{record['deal_id']}  version {record['version']}"
        + (f"  merged into {merged_into}" if merged_into else ""))
    out(f"  vendor: {', '.join(record['vendors']) or record['vendor'] or '-'}  country: "
        f"{record['country'] or '-'}" + (f" ({record['country_name']})" if record["country_name"]
                                         else "") + f"  counterpart: {counterpart}")
    out(f"  type: {', '.join(record['deal_types']) or '-'}  stage: {record['stage'] or '-'}"
        + (f"  value: {amount}" if amount else "") + (f"  year: {record['year']}" if record["year"]
                                                   else ""))
    out(f"  reported {record['first_reported'] or '?'} – {record['last_reported'] or '?'}; "
        f"confirmed by {record['confirmed_by']} at {record['confirmed_at']}")
    out(f"  confidence {record['confidence']}: {record['source_count']} source(s), "
        f"{record['independent_sources']} independent, "
        + ("an official statement among them" if record["official_source"]
           else "none official"))
    if record["external_id"]:
        out(f"  known deal {record['external_id']}: imported from {record['imported_from']} at "
            f"{record['imported_at']}; its source {record['source_url'] or '-'}")
    for external_id, url in zip(record["merged_external_ids"], record["merged_source_urls"],
                                strict=True):
        out(f"  known deal {external_id} merged into it: its source {url or '-'}")
    if record["notes"]:
        out(f"  notes: {record['notes']}")
    if record["stage_history"]:
        out("  stages: " + " → ".join(f"{h['stage']} ({h['reported'] or 'undated'})"
                                      for h in record["stage_history"]))
    out(f"  sources ({len(record['sources'])}; split --source takes the #):")
    for s in record["sources"]:
        filed = candidates.get(s["url"], [])
        marks = " ".join(f"#{c}" for c in filed) + (
            "  official" if any(c in official for c in filed) else "")
        out(f"    {marks}  {s['published'] or 'undated'}  {s['site'] or ''}  {s['url']}")
        out(f"      “{s['sentence']}”")
    if corrections:
        out("  corrections (`deals undo` takes back your last):")
        for entry in corrections:
            out(f"    {entry.line()}")


@click.group()
@reviewer_option
@pass_state
def deals(state: State, reviewer: str | None) -> None:
    """The registry: confirmed deals with their sources; correct them (edit, merge, split) and
    undo a correction. A deal is named dw-000003 (or just 3).

    \b
    Example:
        dealwatch deals list
        dealwatch deals show dw-000003
        dealwatch deals edit dw-000003 --set stage=signed --set "notes=gazette of 2 May"
        dealwatch deals merge dw-000003 dw-000007     # one real-world deal recorded twice
        dealwatch deals split dw-000003 --source 41 --source 42
        dealwatch deals source-official dw-000003 41  # a ministry's own statement
        dealwatch deals undo                          # takes back your last correction
    """
    state.reviewer = reviewer


@deals.command("list")
@vendor_option("Only deals with this watchlist vendor among theirs (id, name or alias).")
@country_option("Only deals in this country (ISO alpha-2).")
@click.option("--type", "deal_type", type=click.Choice(DEAL_TYPES), default=None, metavar="TYPE",
              help=f"Only deals of this type among theirs: {', '.join(DEAL_TYPES)}.")
@click.option("--stage", type=click.Choice(STAGES), default=None, metavar="STAGE",
              help=f"Only deals at this stage: {', '.join(STAGES)}.")
@click.option("--confidence", "grades", multiple=True, metavar="GRADE",
              type=click.Choice(CONFIDENCE_GRADES, case_sensitive=False),
              help="Only deals of this confidence grade (A, B or C; repeat for several).")
@year_option("Only deals of this year.")
@search_option("Only deals whose sources' articles (title or text) have all these words, or "
               "whose evidence, counterpart or notes have TEXT as typed.")
@sort_options(DEAL_SORTS, "The column to sort by (ties by deal id; default deal_id).")
@click.option("--json", "as_json", is_flag=True, help="The registry records (as `export`).")
@pass_state
def deals_list(state: State, vendor: str | None, country: str | None, deal_type: str | None,
               stage: str | None, grades: tuple[str, ...], year: int | None,
               search: str | None, sort: str | None, descending: bool | None,
               as_json: bool) -> None:
    """The deals in the registry (merged ones left out), oldest first, with their confidence
    grade and how many independent sources report them; filtered, searched and sorted as the
    web UI's deals page is.

    \b
    Example:
        dealwatch deals list
        dealwatch deals list --confidence A --confidence B
        dealwatch deals list --vendor huawei --country KE --stage signed
        dealwatch deals list --search "data centre" --sort last_reported --desc
        dealwatch deals list --json | jq '.[] | select(.stage == "signed") | .deal_id'
    """

    query = DealQuery(vendor=vendor, country=country, deal_type=deal_type, stage=stage,
                      year=year, search=search,
                      confidence=tuple(dict.fromkeys(g.upper() for g in grades)),
                      sort=sort or "deal_id", descending=bool(descending))
    with state.store() as store:
        listing = deal_listing(store, query, official_source_ids(state.config.sources),
                               records=as_json)
    if as_json:
        echo_json(listing.records)
        return
    if not listing.total:
        click.echo("the registry is empty: `dealwatch review confirm ID` files a deal")
        return
    if listing.deals:
        for line in table_lines(DEALS_TABLE, [_deal_row(w) for w in listing.deals],
                                right=(7, 8)):
            click.echo(line)
    else:
        said = [f"{name} {value}" for name, value in (
            ("vendor", vendor), ("country", country), ("type", deal_type), ("stage", stage),
            ("confidence", ", ".join(query.confidence) or None), ("year", year),
            ("search", search and f"“{search}”")) if value]
        click.echo(f"no deal matches: {'; '.join(said)}")
    click.echo(f"{len(listing):,} of {listing.total:,} deals")


DEALS_TABLE = ("deal", "vendors", "country", "counterpart", "types", "stage", "confidence",
               "sources", "independent", "official", "first reported", "last reported")


def _deal_row(weighed: WeighedDeal) -> list[str]:
    d, t = weighed.deal, weighed.triangulation
    counterpart = d.counterpart or "-"
    return [d.deal_id, ", ".join(d.vendors or ([d.vendor] if d.vendor else [])) or "-",
            d.country or "-", counterpart if len(counterpart) <= 32 else counterpart[:31] + "…",
            ", ".join(d.deal_types or []) or "-", d.stage or "-", t.confidence, str(t.sources),
            str(t.independent_sources), "yes" if t.official_source else "", d.first_reported or "-",
            d.last_reported or "-"]


@deals.command("show")
@click.argument("deal_id", metavar="ID", type=DEAL)
@click.option("--json", "as_json", is_flag=True, help="The registry record.")
@pass_state
def deals_show(state: State, deal_id: int, as_json: bool) -> None:
    """One deal: its fields, stage history and every source with its evidence.

    \b
    Example:
        dealwatch deals show dw-000003
        dealwatch deals show 3 --json
    """

    with state.store() as store:
        view = deal_view(store, deal_id, official=official_source_ids(state.config.sources))
    if as_json:
        merged = {"merged_into": view.merged_into} if view.merged_into else {}
        echo_json({**view.record, **merged})
    else:
        _render_deal(view.record, click.echo, view.merged_into, view.candidates, view.corrections,
                     view.official)


@deals.command("source-official")
@click.argument("deal_id", metavar="ID", type=DEAL)
@click.argument("candidate_id", metavar="SOURCE", type=click.IntRange(min=1))
@click.option("--no", "not_official", is_flag=True,
              help="It is not an official statement (whatever sources.toml says).")
@click.option("--unset", is_flag=True, help="Forget your word: sources.toml decides again.")
@pass_state
def deals_source_official(state: State, deal_id: int, candidate_id: int, not_official: bool,
                          unset: bool) -> None:
    """Say that a deal's source (its # in `deals show`) is an official statement: a
    government's or a vendor's own. A deal with one is graded A.

    \b
    Example:
        dealwatch deals source-official dw-000003 41         # the ministry's press release
        dealwatch deals source-official dw-000003 41 --no    # a blog quoting it, after all
        dealwatch deals source-official dw-000003 41 --unset
    """

    if not_official and unset:
        raise click.UsageError("--no and --unset: one or the other")
    official = None if unset else not not_official
    with state.store() as store:
        set_source_official(store, deal_id, candidate_id, official)
        view = deal_view(store, deal_id, official=official_source_ids(state.config.sources))
    word = {True: "official", False: "not official", None: "as sources.toml says"}[official]
    click.echo(f"{view.deal.deal_id}: source #{candidate_id} is {word}; confidence "
               f"{view.record['confidence']}")


def _can_ask() -> bool:
    """Someone at a terminal can answer a question (not a script, a pipe or cron)."""
    return sys.stdin.isatty()


@deals.command("edit")
@click.argument("deal_id", metavar="ID", type=DEAL)
@set_option("A field and its corrected value (repeatable; an empty value clears it): vendor, "
             "vendors, country, counterpart, counterpart_type, deal_type, deal_types (comma-"
             "separated), stage, value, currency, year, notes.")
@click.option("--expect-version", type=int, default=None, metavar="N",
              help="Refuse (exit 1) when the deal is no longer at version N (what `deals show` "
                   "printed): someone changed it since.")
@click.option("--json", "as_json", is_flag=True, help="The correction as recorded, for scripts.")
@pass_state
def deals_edit(state: State, deal_id: int, edits: dict[str, str], expect_version: int | None,
               as_json: bool) -> None:
    """Correct a deal's fields; the deal audit keeps the old values (`deals undo` puts them back).

    Values are checked as `review edit` checks a candidate's. A new stage joins the deal's
    stage history as set by hand.

    \b
    Example:
        dealwatch deals edit dw-000003 --set stage=signed --set value=120000000 --set currency=USD
        dealwatch deals edit dw-000003 --set deal_types=cloud,data_centre --set "notes=two phases"
    """

    if not edits:
        raise click.UsageError("give the fields to change: --set FIELD=VALUE")
    with state.store() as store:
        correction = edit_deal(store, deal_id, state.reviewer_name, edits, version=expect_version,
                               known_vendors=state.config.vendor_ids())
        deal = store.registry.deal(deal_id)
    if as_json:
        echo_json(correction.to_dict())
        return
    changes = "; ".join(f"{name}: {field_text(before)} → {field_text(after)}"
                        for name, (before, after) in correction.changes.items())
    click.echo(f"edited {deal.deal_id if deal else deal_id}: {changes} "
               f"(version {deal.version if deal else '?'}; `deals undo` takes it back)")


@deals.command("merge")
@click.argument("keep", type=DEAL)
@click.argument("absorb", type=DEAL)
@click.option("--yes", is_flag=True,
              help="Merge without asking (needed when not on a terminal, as in a script).")
@pass_state
def deals_merge(state: State, keep: int, absorb: int, yes: bool) -> None:
    """One real-world deal recorded twice: move ABSORB's sources and stages into KEEP.

    Shows what will change and asks first (on a terminal; elsewhere it needs --yes), warning
    when the two deals' countries, vendors, counterparts, kinds or years disagree. ABSORB stays
    in the database as merged (exports leave it out; a push tells the endpoint). `deals undo`
    takes the merge back, and so does splitting ABSORB's sources off KEEP again.

    \b
    Example:
        dealwatch deals merge dw-000003 dw-000007
        dealwatch deals merge dw-000003 dw-000007 --yes     # in a script: no question
    """

    with state.store() as store:
        view = merge_view(store, keep, absorb)
        names = f"{view.preview.absorb.deal_id} into {view.preview.keep.deal_id}"
        if not yes:
            if not _can_ask():
                differ = (" (the " + " and the ".join(
                    "countries" if name == "country" else name for name in view.preview.serious)
                    + " differ)") if view.serious else ""
                fail(f"merging {names}{differ} needs an answer: nothing was asked here (not a "
                     "terminal), so add --yes to merge without asking")
            click.echo(f"merge {names}:")
            for line in (deal_summary(view.preview.keep), deal_summary(view.preview.absorb)):
                click.echo(f"  {line}")
            click.echo(f"  {view.moves}")
            for change in view.changes:
                click.echo(f"  {view.preview.keep.deal_id} {change}")
            for warning in view.warnings:
                click.echo(f"  warning: {warning}")
            question = "These look like two deals. Merge them anyway?" if view.serious else "Merge?"
            if not click.confirm(question, default=False):
                click.echo("not merged")
                return
        else:
            for warning in view.warnings:
                click.echo(f"warning: {warning}", err=True)
        merge_deals(store, keep, absorb, state.reviewer_name, seen=view.versions)
        click.echo(f"merged {names} ({len(store.registry.deal_sources(keep))} sources now)")


@deals.command("split")
@click.argument("deal_id", metavar="ID", type=DEAL)
@click.option("--source", "sources", type=int, multiple=True, required=True, metavar="CANDIDATE_ID",
              help="A source (candidate id, as `deals show` lists) to move into the new deal "
                   "(repeatable).")
@pass_state
def deals_split(state: State, deal_id: int, sources: tuple[int, ...]) -> None:
    """Two real-world deals recorded as one: move some sources into a new deal.

    The deal keeps its id, fields and notes (a kind of project only the moved sources reported
    goes with them); its dates and stage follow the sources it keeps. When the sources are
    exactly those a merge brought in, the merged deal comes back as it was, with its own id and
    notes. `deals undo` takes the split back.

    \b
    Example:
        dealwatch deals split dw-000003 --source 41 --source 42
    """

    with state.store() as store:
        split = split_sources(store, deal_id, list(sources), state.reviewer_name)
        assert split.other_deal_id is not None
        moved, into = len(split.sources), deal_label(store, split.other_deal_id)
        if split.reverses:
            click.echo(f"moved {moved} source(s) of {deal_label(store, deal_id)} back into "
                       f"{into}, as before the merge")
        else:
            click.echo(f"moved {moved} source(s) of {deal_label(store, deal_id)} into the new "
                       f"deal {into}")


@deals.command("undo")
@pass_state
def deals_undo(state: State) -> None:
    """Take back your last registry correction (a merge, split or edit): sources, stages and
    fields as they were.

    Refused when one of its deals changed since in another way (a review decision, another
    reviewer's correction); then correct it again by hand. `review undo` takes back review
    decisions, and not past a later correction.

    \b
    Example:
        dealwatch deals --reviewer ann undo
    """

    with state.store() as store:
        undone = undo_correction(store, state.reviewer_name)
    click.echo(f"undone: {describe_correction(undone)} (by {undone.reviewer} at "
               f"{undone.corrected_at})")


# --- export and push ------------------------------------------------------------------------


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ExportError as exc:
        raise click.BadParameter(str(exc).removeprefix("since: "), ctx, param) from None


@click.command()
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="csv (one row per deal), json (a list) or jsonl (a record per line). "
                   "Default: csv.")
@click.option("--out", default=None, metavar="FILE", help="Write to FILE ('-' or absent: stdout).")
@click.option("--since", default=None, metavar="DATE", callback=_since,
              help="Only deals changed on or after DATE (a new source, stage or field).")
@click.option("--push", "push_url", default=None, metavar="URL",
              help="POST new and changed deals to this registry endpoint instead (env "
                   "DEALWATCH_PUSH_TOKEN: sent as a bearer token).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Push: seconds to wait for each answer.")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Push: retries of a deal after a 5xx, 429 or lost connection.")
@click.option("--backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Push: seconds before the first retry, doubling after each.")
@pass_state
def export(state: State, fmt: str | None, out: str | None, since: str | None,
           push_url: str | None, timeout: float, retries: int, backoff: float) -> None:
    """Export the registry (one record per deal, with its sources), or push it to an endpoint.

    The same registry gives the same bytes; each export is logged in the `exports` table. A push
    sends each deal version the endpoint has not acknowledged, with an Idempotency-Key
    (`<deal_id>-v<version>`), and exits 1 when a deal could not be sent (run it again: it sends
    only what is missing).

    \b
    Example:
        dealwatch export --format csv --out registry.csv
        dealwatch export --format jsonl --since 2026-01-01 > changed.jsonl
        dealwatch export --push https://registry.example.org/api/deals
    """

    if push_url:
        if fmt or out or since:
            raise click.UsageError("--push sends every new or changed deal: it takes no "
                                   "--format, --out or --since")
        with state.store() as store:
            report = push_registry(store, push_url, timeout=timeout, retries=retries,
                                   backoff=backoff,
                                   token=os.environ.get("DEALWATCH_PUSH_TOKEN") or None,
                                   official=official_source_ids(state.config.sources))
        for key, error in report.failed:
            click.echo(f"  not sent: {key}: {error}", err=True)
        if not report.ok:
            fail(f"push to {push_url}: {report.summary()}; run it again to send the rest")
        click.echo(f"push to {push_url}: {report.summary()}")
        return

    with state.store() as store:
        result, destination = export_registry(
            store, fmt or "csv", since, partial(write_output, out),
            official_source_ids(state.config.sources))
    click.echo(f"exported {result.deals} deal(s) as {result.format} to {destination}", err=True)


COMMANDS = (deals, export)


# --- known deals from another registry ------------------------------------------------------


@deals.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default=None,
              help="csv (with a header) or jsonl (an object per line). Default: by the name "
                   "(.csv; .jsonl or .ndjson).")
@click.option("--dry-run", is_flag=True, help="Say what it would add and update; write nothing.")
@pass_state
def deals_import(state: State, file: Path, fmt: str | None, dry_run: bool) -> None:
    """Load known deals from another registry: one deal a row, in the columns external_id,
    vendor, country (these three required), counterpart, deal_type, stage, value, currency,
    year, source_url (README, "Importing a registry").

    Idempotent by external_id: a row imported before leaves its deal alone, unless the other
    registry changed it since (then the fields it changed are set, as a new version). A row
    that cannot be read is listed with its line and left out; the others load (exit 1 when any
    was left out). New candidates of a known deal say so in the queue and confirm into it.

    \b
    Example:
        dealwatch deals import docs/examples/known_deals.csv --dry-run
        dealwatch deals --reviewer ann import known_deals.csv
        dealwatch deals import registry.ndjson
    """

    found = read_known_deals(file, fmt, state.config.watchlist)  # before the database opens
    with state.store(may_create=not dry_run) as store:  # a dry run only reads
        report = load_known_deals(store, found, state.reviewer_name, dry_run=dry_run)
    name = report.file.name
    if report.file.ignored:
        click.echo(f"{name}: ignored (not a column of ours): {', '.join(report.file.ignored)}",
                   err=True)
    for problem in report.file.problems:
        click.echo(f"{name}:{problem.line}: {problem.reason}", err=True)
    for done in report.loaded:
        if done.action == "added":
            click.echo(f"would add {done.row.external_id}" if dry_run
                       else f"added {done.deal_id} ({done.row.external_id})")
        elif done.action == "updated":
            changes = "; ".join(f"{field}: {field_text(before)} → {field_text(after)}"
                                for field, (before, after) in done.changes.items())
            click.echo(f"{'would update' if dry_run else 'updated'} {done.deal_id} "
                       f"({done.row.external_id}): {changes}")
    click.echo(("dry run, nothing written: " if dry_run else f"{name}: ") + report.summary())
    if report.file.problems:
        fail(f"{name}: {len(report.file.problems)} bad row(s) left out (listed above); the "
             f"other rows {'would load' if dry_run else 'were loaded'}")
