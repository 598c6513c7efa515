"""Report routes: the list of reports (aggregate claims) and one report with its claim and sources."""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape
from starlette.responses import Response

from models.registry import ClaimCount, report_number
from pipeline.config import Config
from pipeline.review.reports import ReportError, report_view
from pipeline.review.web.pages import Ctx, Pages

# A deal's or a report's name in a message: linked to its page.
_RECORD_NAME = re.compile(r"\b(dw|rp)-\d{6}\b")
_PAGES = {"dw": "/deal/", "rp": "/report/"}


def linked_names(text: str) -> Markup:
    """A message as HTML (escaped), each deal or report it names linked to its page:
    "filed as report rp-000001" links rp-000001 to /report/rp-000001."""
    parts: list[str] = []
    at = 0
    for match in _RECORD_NAME.finditer(text):
        name = match.group()
        parts += [escape(text[at:match.start()]),
                  Markup('<a href="{}">{}</a>').format(_PAGES[match.group(1)] + name, name)]
        at = match.end()
    parts.append(escape(text[at:]))
    return Markup("").join(parts)


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
        self.vendor_ids = config.vendor_ids()
        # a flash message ("… filed as report rp-000001") links the record it names
        pages.env.filters["linked_names"] = linked_names

    def reports(self, ctx: Ctx) -> Response:
        vendor = ctx.request.query_params.get("vendor", "").strip() or None
        if vendor is not None and vendor not in self.vendor_ids:
            return self.pages.error(ctx, 400, "Unknown vendor", (
                f"vendor={vendor} is no watchlist vendor id: use one of "
                f"{', '.join(sorted(self.vendor_ids))}."))
        with ctx.store.snapshot():
            reports = ctx.store.reports.reports(vendor)
            vendors = ctx.store.reports.vendors()
        return self.pages.render(ctx, "reports.html", reports=reports, vendor=vendor,
                                 vendors=vendors)

    def report(self, ctx: Ctx, report_id: int) -> Response:
        # /report/rp-000001 is its address; /report/1 shows it too
        try:
            view = report_view(ctx.store, report_id)
        except ReportError:
            return self.pages.error(ctx, 404, "No such report",
                                    f"There is no report {report_number(report_id)}.")
        return self.pages.render(ctx, "report.html", report=view.report, sources=view.sources,
                                 claim=claim_segments(view.report.sentence, view.report.counts))
