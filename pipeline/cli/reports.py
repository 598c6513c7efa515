"""Reports from the terminal: reports list|show|export|refile (aggregate claims, filed apart from
deals)."""

from __future__ import annotations

from typing import Any

import click

from models.registry import report_number
from pipeline.cli.common import (
    REPORT,
    State,
    echo_json,
    pass_state,
    table_lines,
    vendor_option,
    write_output,
)
from pipeline.review.export import FORMATS
from pipeline.review.reports import (
    ClaimReader,
    Refiling,
    ReportView,
    export_reports,
    refile_deals,
    report_records,
    report_view,
)


def _counts(record: dict[str, Any]) -> str:
    return ", ".join(f"{c['count']} {c['noun']}" for c in record["counts"]) or "-"


def _render(view: ReportView) -> None:
    record = view.to_dict()
    click.echo(f"{record['report_id']}  version {record['version']}"
               + (f"  WITHDRAWN ({view.withdrawn})" if view.withdrawn else ""))
    click.echo(f"  claim: “{record['sentence']}”")
    click.echo(f"  counts: {_counts(record)}  (deals: {record['deals'] or '-'}, countries: "
               f"{record['countries'] or '-'})  scope: {record['scope'] or '-'}")
    click.echo(f"  vendor: {', '.join(record['vendors']) or record['vendor'] or '-'}  type: "
               f"{', '.join(record['deal_types']) or '-'}  year: {record['year'] or '-'}")
    click.echo(f"  outlet: {record['outlet'] or '-'}  {record['published'] or 'undated'}  "
               f"{record['url'] or ''}")
    click.echo(f"  confirmed by {record['confirmed_by']} at {record['confirmed_at']}")
    if record["notes"]:
        click.echo(f"  notes: {record['notes']}")
    click.echo(f"  from ({len(view.sources)} cop{'y' if len(view.sources) == 1 else 'ies'} of "
               "the story):")
    for s in view.sources:
        click.echo(f"    #{s.candidate_id}  {s.status}  {(s.published or 'undated')[:10]}  "
                   f"{s.site or ''}  {s.url or ''}")


@click.group()
def reports() -> None:
    """Reports: aggregate claims ("70 deals in 41 countries"), which confirming an aggregate
    candidate files apart from deals, with the counts and scope the sentence states and the
    outlet behind it. A report is named rp-000001 (or just 1).

    \b
    Example:
        dealwatch reports list
        dealwatch reports show rp-000001
        dealwatch reports export --format csv -o reports.csv
    """


@reports.command("list")
@vendor_option("Only reports naming this watchlist vendor.")
@click.option("--json", "as_json", is_flag=True, help="The report records (as `reports export`).")
@pass_state
def reports_list(state: State, vendor: str | None, as_json: bool) -> None:
    """Every report, oldest first: its counts, scope, vendor and outlet.

    \b
    Example:
        dealwatch reports list
        dealwatch reports list --vendor huawei --json
    """

    with state.store() as store:
        records = report_records(store, vendor)
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo(f"no report names {vendor}" if vendor else
                   "no reports yet: `dealwatch review confirm ID` files an aggregate as one")
        return
    rows = [(r["report_id"], ",".join(r["vendors"]) or r["vendor"] or "-",
             str(r["deals"] or "-"), str(r["countries"] or "-"), r["scope"] or "-",
             r["outlet"] or "-", r["published"] or "-", _counts(r)) for r in records]
    for line in table_lines(("REPORT", "VENDOR", "DEALS", "COUNTRIES", "SCOPE", "OUTLET",
                             "PUBLISHED", "COUNTS"), rows, right={2, 3}):
        click.echo(line)


@reports.command("show")
@click.argument("report_id", metavar="ID", type=REPORT)
@click.option("--json", "as_json", is_flag=True, help="The report record.")
@pass_state
def reports_show(state: State, report_id: int, as_json: bool) -> None:
    """One report: its claim, counts, scope, outlet and the candidates it was filed from; a
    withdrawn one says so, when, and which decision withdrew it.

    \b
    Example:
        dealwatch reports show rp-000001
        dealwatch reports show 1 --json
    """

    with state.store() as store:
        view = report_view(store, report_id)
    if as_json:
        echo_json(view.to_dict())
    else:
        _render(view)


@reports.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv (one row per report), json (a list) or jsonl (a record per line).")
@click.option("-o", "--out", default=None, metavar="FILE",
              help="Write to FILE, whole or not at all ('-' or absent: stdout).")
@vendor_option("Only reports naming this watchlist vendor.")
@pass_state
def reports_export(state: State, fmt: str, out: str | None, vendor: str | None) -> None:
    """Export the reports, one record each: report_id, vendor, vendors, counts, deals,
    countries, scope, deal_types, year, sentence, outlet, url, title, published, sources,
    notes, confirmed_by, confirmed_at, version.

    \b
    Example:
        dealwatch reports export --format csv -o reports.csv
        dealwatch reports export --format jsonl | jq .counts
    """

    with state.store() as store:
        data, count = export_reports(store, fmt, vendor)
    destination = write_output(out, data)
    click.echo(f"exported {count} report(s) as {fmt} to {destination}", err=True)


def _refiling_lines(found: list[Refiling], done: bool) -> list[str]:
    lines = []
    for refiling in found:
        for story, number in zip(refiling.stories, refiling.report_ids, strict=True):
            lead = story.copies[0]
            ids = ", ".join(f"#{c.id}" for c in story.copies)
            lines.append(f"{refiling.deal.deal_id} ({ids}) {'is now' if done else '->'} "
                         f"{report_number(number)}: “{lead.sentence}”")
    return lines


@reports.command("refile")
@click.option("--yes", is_flag=True, help="Refile them (without it: show what would change).")
@pass_state
def reports_refile(state: State, yes: bool) -> None:
    """Refile as reports the deals filed from aggregate claims before reports existed (every
    source an aggregate candidate): each confirmed story becomes the report its confirmation
    files now, confirmed by whom and when it was, its notes naming the deal; the deal is
    withdrawn (its number is never reused). Without --yes, shows which deal would become which
    report and changes nothing.

    \b
    Example:
        dealwatch reports refile          # dw-000003 (#12, #13) -> rp-000004: “…”
        dealwatch reports refile --yes
    """
    with state.store() as store:
        found = refile_deals(store, ClaimReader(state.config), apply=yes)
    if not found:
        click.echo("no deal was filed from an aggregate claim: nothing to refile")
        return
    for line in _refiling_lines(found, done=yes):
        click.echo(line)
    reports_made = sum(len(r.stories) for r in found)
    summary = (f"{len(found)} deal(s) filed from aggregate claims, "
               f"{reports_made} report(s)")
    click.echo(f"refiled {summary}" if yes else
               f"{summary} — nothing changed; `dealwatch reports refile --yes` refiles them")


COMMANDS = (reports,)
