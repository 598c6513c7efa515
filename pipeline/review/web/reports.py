"""Report routes: the list of reports (aggregate claims), as a page or a download, and one report
with its claim and sources (or, withdrawn, the decision that withdrew it)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from models.registry import ClaimCount, report_number
from pipeline.config import Config
from pipeline.review import filters
from pipeline.review.filters import FilterError
from pipeline.review.reports import (
    REPORT_WRITERS,
    ReportError,
    describe_withdrawal,
    report_records,
    report_view,
)
from pipeline.review.web.forms import (
    as_sentence,
    checked_params,
    download,
    download_format,
    download_links,
)
from pipeline.review.web.pages import Ctx, Pages


def claim_segments(sentence: str, counts: Sequence[ClaimCount]) -> list[tuple[str, bool]]:
    """The claim cut into runs, the counts it states marked (True) for highlighting, in the
    order they were read."""
    segments: list[tuple[str, bool]] = []
    at = 0
    for count in counts:
        start = sentence.find(count.text, at)
        if start < 0:
            continue
        if start > at:
            segments.append((sentence[at:start], False))
        segments.append((count.text, True))
        at = start + len(count.text)
    if at < len(sentence):
        segments.append((sentence[at:], False))
    return segments


class ReportRoutes:
    """Reports as reviewers see them: what each claims, from which outlet and candidates."""

    def __init__(self, config: Config, pages: Pages):
        self.pages = pages
        self.watchlist = config.watchlist

    def reports(self, ctx: Ctx) -> Response:
        """The filed reports (vendor=: those naming a vendor, by its id, name or alias), as a
        page or (format=csv|json) as the records `dealwatch reports export` writes."""
        params = ctx.request.query_params
        try:
            vendor = checked_params(params, {
                "vendor": lambda v: filters.vendor_id(v, self.watchlist)})["vendor"]
            fmt = download_format(params)
        except FilterError as exc:
            return self.pages.error(ctx, 400, "Unknown filter value", as_sentence(exc))
        if fmt is not None:
            return download(REPORT_WRITERS[fmt](report_records(ctx.store, vendor)), "reports",
                            fmt)
        with ctx.store.snapshot():
            reports = ctx.store.reports.reports(vendor)
            vendors = ctx.store.reports.vendors()
        current = [("vendor", vendor)] if vendor else []
        return self.pages.render(
            ctx, "reports.html", reports=reports, vendor=vendor, vendors=vendors,
            download_url=download_links("/reports", current))

    def report(self, ctx: Ctx, report_id: int) -> Response:
        # /report/rp-000001 is its address; /report/1 shows it too. A withdrawn report is a 200
        # page that says so first: like a retracted paper's notice, it is still the record that
        # links pointed to, and a withdrawal can be undone (410 Gone says "for good").
        try:
            view = report_view(ctx.store, report_id)
        except ReportError:
            return self.pages.error(ctx, 404, "No such report",
                                    f"There is no report {report_number(report_id)}.")
        return self.pages.render(ctx, "report.html", report=view.report, sources=view.sources,
                                 claim=claim_segments(view.report.sentence, view.report.counts),
                                 withdrawal=view.withdrawal,
                                 withdrawn_by=describe_withdrawal(view.withdrawal))
