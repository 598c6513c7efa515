"""Queue and candidate routes: the paged queue, one candidate, deciding, editing, bulk reject, undo."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.responses import RedirectResponse, Response

from models.registry import QueueEntry, report_number
from pipeline.config import Config
from pipeline.review import decisions as review
from pipeline.review import present, registry
from pipeline.review.export import to_json
from pipeline.review.filters import FilterError
from pipeline.review.reports import ClaimReader
from pipeline.review.views import candidate_view, queue_csv, queue_json
from pipeline.review.web.forms import (
    DEAL_TYPE_OPTIONS,
    FORM_FIELDS,
    PAGE_SIZE,
    STAGE_OPTIONS,
    SortLinks,
    as_sentence,
    changed_edits,
    download,
    download_format,
    download_links,
    format_cursor,
    local_path,
    parse_cursor,
    parse_queue_query,
    parse_row_id,
    plain,
    queue_params,
    reason_label,
    sort_choice,
    strict_queue_params,
    with_query,
)
from pipeline.review.web.highlight import ENTITY_CLASSES, article_segments, paragraphs
from pipeline.review.web.pages import Ctx, Pages
from pipeline.storage import Store
from pipeline.storage.queue import QUEUE_SORTS, QueueCounts, QueueQuery, cursor_of

logger = logging.getLogger(__name__)

# How the queue's orders read: in the Sort menu, then ascending and descending ("1–50 of 80 · …").
QUEUE_SORT_NAMES = {
    "score": ("score", "lowest score first", "best score first"),
    "date": ("date", "oldest first", "newest first"),
    "vendor": ("vendor", "by vendor, A–Z", "by vendor, Z–A"),
    "country": ("country", "by country code, A–Z", "by country code, Z–A"),
    "stage": ("stage", "by stage, proposed first", "by stage, latest first"),
}


class ViewCounts:
    """A queue view's counts, kept a while per filter set: how many entries it has ("of 1,234")
    reads every entry, each checked against its story's other copies (a third of a second at
    100,000 candidates). A count is taken again once anything is decided, undone, edited or
    added, by anyone (Candidates.queue_version), so the page tells the truth right after a
    decision; else after `seconds` (rescoring moves no version until its run ends)."""

    def __init__(self, seconds: float = 30.0, views: int = 64):
        self.seconds, self.views = seconds, views
        self.kept: dict[QueueQuery, tuple[float, tuple[Any, ...], int, QueueCounts]] = {}
        self.lock = threading.Lock()

    def of(self, store: Store, query: QueueQuery) -> tuple[int, QueueCounts]:
        """The view's entries and its counts per status and hidden (any order: the same)."""
        key = replace(query, sort="score", descending=None, limit=None)
        version, now = store.candidates.queue_version(), time.monotonic()
        with self.lock:
            kept = self.kept.get(key)
        if kept and kept[1] == version and now - kept[0] < self.seconds:
            return kept[2], kept[3]
        matching, counts = store.candidates.queue_count(query), store.candidates.queue_counts(query)
        with self.lock:
            self.kept.pop(key, None)
            while len(self.kept) >= self.views:  # the oldest view goes first
                del self.kept[next(iter(self.kept))]
            self.kept[key] = (now, version, matching, counts)
        return matching, counts


class QueueRoutes:
    """The reviewer's work: the queue, a candidate's page and the decisions taken on it."""

    def __init__(self, config: Config, pages: Pages):
        self.config = config
        self.pages = pages
        self.vendor_ids = config.vendor_ids()
        self.claims = ClaimReader(config)  # confirming an aggregate reads its claim
        self.options_cache: tuple[float, dict[str, Any]] | None = None
        self.view_counts = ViewCounts()

    def filter_options(self, store: Store) -> dict[str, Any]:
        """Values for the filter menus; cached for a minute (DISTINCT over 100k rows adds up)."""
        now = time.monotonic()
        if self.options_cache and now - self.options_cache[0] < 60:
            return self.options_cache[1]
        options = {
            "vendors": self.pages.vendor_options,
            "countries": self.pages.country_choices(store.candidates.candidate_countries()),
            "sources": [(s, s) for s in store.runs.source_ids()],
            "languages": [(code, f"{present.language_name(code) or code} ({code})")
                          for code in store.candidates.candidate_languages()],
            "deal_types": DEAL_TYPE_OPTIONS, "stages": STAGE_OPTIONS,
            "kinds": [("deal", "deal"), ("aggregate", "aggregate")],
        }
        self.options_cache = (now, options)
        return options

    # -- the queue --

    def home(self, ctx: Ctx) -> Response:
        return RedirectResponse("/queue", 303)

    def queue(self, ctx: Ctx) -> Response:
        params = ctx.request.query_params
        try:  # a filter, an order or a download that names nothing is refused, naming the valid
            sort_choice(params, QUEUE_SORTS)
            fmt = download_format(params)
            checked = strict_queue_params(params, self.config.watchlist,
                                          ctx.store.runs.source_ids())
        except FilterError as exc:
            return self.pages.error(ctx, 400, "Unknown filter value", as_sentence(exc))
        query = parse_queue_query(checked)
        filters_qs = urlencode(queue_params(query))
        if fmt is not None:  # the whole view, every page of it, read at one moment
            with ctx.store.snapshot():
                entries = ctx.store.candidates.queue(query)
                matches = registry.known_matches(ctx.store, entries)
            return download(queue_csv(entries, matches) if fmt == "csv" else
                            to_json(queue_json(entries, matches)), "queue", fmt)
        after, before = parse_cursor(params.get("after"), query), parse_cursor(
            params.get("before"), query)
        rows: list[QueueEntry] = []
        with ctx.store.snapshot():  # the rows and the counts of one moment
            if before is not None and after is None:
                rows = ctx.store.candidates.queue_page(query, PAGE_SIZE + 1, before=before)
                has_prev, has_next = len(rows) > PAGE_SIZE, True
                rows = rows[-PAGE_SIZE:]
                if not has_prev:
                    before = None  # back at the top: show a full first page
            if before is None:
                rows = ctx.store.candidates.queue_page(query, PAGE_SIZE + 1, after=after)
                has_prev, has_next = after is not None, len(rows) > PAGE_SIZE
                rows = rows[:PAGE_SIZE]
            ctx.store.candidates.attach_copies(rows)
            matches = registry.known_matches(ctx.store, rows)  # "matches dw-000012"
            # "51–100 of 1,234": the entries ahead of this page's first (counted along the
            # order's index, up to the page), and all of them, with the counts per status
            matching, view = self.view_counts.of(ctx.store, query)
            first = 0 if not rows else 1 if after is None and before is None else (
                ctx.store.candidates.queue_count(query, before=cursor_of(rows[0], query)) + 1)
            counts = view.statuses
            hidden_count = 0 if query.status not in ("pending", None) else view.hidden
        base = queue_params(query)
        return self.pages.render(
                  ctx, "queue.html", rows=rows, matches=matches, query=query, filters=base,
                  hidden_count=hidden_count, threshold=self.config.rules.scoring.threshold,
                  scores_url=with_query("/queue", queue_params(
                      replace(query, hidden=not query.hidden, min_score=None))),
                  filters_qs=filters_qs, counts=counts, total=sum(counts.values()),
                  matching=matching, first=first,
                  options=self.filter_options(ctx.store),
                  status_url=lambda status: with_query("/queue", queue_params(
                      replace(query, status=None if status == "all" else status))),
                  prev_url=with_query("/queue", {**base, "before": format_cursor(rows[0], query)})
                  if has_prev and rows else None,
                  next_url=with_query("/queue", {**base, "after": format_cursor(rows[-1], query)})
                  if has_next and rows else None,
                  sorting=SortLinks("/queue", [(k, v) for k, v in base.items()
                                               if k not in ("sort", "order")],
                                    query.sort, query.desc,
                                    natural=lambda key: QUEUE_SORTS[key].descending),
                  sort_options=[(key, QUEUE_SORT_NAMES[key][0]) for key in QUEUE_SORTS],
                  order_text=QUEUE_SORT_NAMES[query.sort][int(query.desc) + 1],
                  download_url=download_links("/queue", base.items()),
                  first_url=with_query("/queue", base) if has_prev else None,
                  page_cursor={k: v for k, v in (("after", params.get("after")),
                                                 ("before", params.get("before"))) if v})

    # -- one candidate --

    def candidate_page(self, ctx: Ctx, candidate_id: int, *, status: int = 200,
                       conflict: str = "", error: str = "",
                       values: Mapping[str, str] | None = None) -> Response:
        with ctx.store.snapshot():  # the candidate, its neighbours and its history of one moment
            try:
                view = candidate_view(ctx.store, candidate_id)
            except review.ReviewError:
                return self.pages.error(ctx, 404, "No such candidate",
                                        f"There is no candidate #{candidate_id}.")
            cand = view.candidate
            query, filters_qs = ctx.queue_filters()
            cursor = cursor_of(cand, query)
            nxt = ctx.store.candidates.queue_page(query, 1, after=cursor)
            prev = ctx.store.candidates.queue_page(query, 1, before=cursor)
        labels = {e.label for e in view.entities}
        form_values = {name: plain(getattr(cand, name)) for name in FORM_FIELDS}
        form_values.update(values or {})
        return self.pages.render(
                  ctx, "candidate.html", status=status, c=cand, conflict=conflict, error=error,
                  paragraphs=paragraphs(article_segments(
                      cand.article_text or "", view.evidence.span, view.entities)),
                  evidence_found=view.evidence.span is not None,
                  entity_labels=[label for label in ENTITY_CLASSES if label in labels],
                  extra_labels=sorted(labels - set(ENTITY_CLASSES)),
                  copies=cand.copies, group=view.group, history=view.history,
                  suggestions=view.suggestions, deal=view.deal, values=form_values,
                  auto_deal=view.suggestions[0].deal if registry.best_match(view.suggestions)
                  else None,
                  filters_qs=filters_qs, queue_url=with_query("/queue", filters_qs),
                  next_url=with_query(f"/candidate/{nxt[0].id}", filters_qs) if nxt else None,
                  prev_url=with_query(f"/candidate/{prev[0].id}", filters_qs) if prev else None,
                  vendor_options=self.pages.vendor_options, countries=self.pages.country_options,
                  edit_open=bool(values) or bool(error))

    def candidate(self, ctx: Ctx, candidate_id: int) -> Response:
        return self.candidate_page(ctx, candidate_id)

    def posted(self, ctx: Ctx, candidate_id: int
               ) -> tuple[QueueEntry, int, dict[str, str]] | Response:
        """The candidate a form was posted for, the version the reviewer saw and the fields they
        changed; or the page that says why not."""
        cand = ctx.store.candidates.candidate(candidate_id)
        if cand is None:
            return self.pages.error(ctx, 404, "No such candidate",
                                    f"There is no candidate #{candidate_id}.")
        version = parse_row_id(ctx.field("version"))
        if version is None:
            return self.pages.no_version(ctx, "candidate")
        return cand, version, changed_edits(ctx.form or {}, cand)

    def decide(self, ctx: Ctx, candidate_id: int) -> Response:
        decision = ctx.field("decision")
        posted = self.posted(ctx, candidate_id)
        if isinstance(posted, Response):
            return posted
        cand, version, edits = posted
        reason = ctx.field("reason") or None
        if decision == "reject" and reason is None:
            return self.candidate_page(ctx, candidate_id, status=400, values=edits,
                                       error="Choose a reason for the rejection.")
        deal_choice = ctx.field("deal", "auto")
        deal_id = "new" if deal_choice == "new" else parse_row_id(deal_choice)  # else: the best match
        try:
            outcome = review.decide(
                ctx.store, candidate_id, decision, ctx.user, version=version,
                reason=reason if decision == "reject" else None,
                note=ctx.field("note") or None, edits=edits,
                deal_id=deal_id if decision == "confirm" and cand.kind != "aggregate" else None,
                known_vendors=self.vendor_ids, claims=self.claims)
        except review.ConflictError as exc:
            logger.info("conflict for %s on #%d: %s", ctx.user, candidate_id, exc)
            return self.candidate_page(ctx, candidate_id, status=409, conflict=str(exc))
        except (review.ReviewError, registry.RegistryError) as exc:
            return self.candidate_page(ctx, candidate_id, status=400, values=edits, error=str(exc))
        copies = len(outcome.candidate_ids) - 1
        text = f"#{candidate_id} {outcome.status}" + (
            f" with {copies} {'copy' if copies == 1 else 'copies'}" if copies else "")
        if outcome.deal_id:
            deal = ctx.store.registry.deal(outcome.deal_id)
            text += f", filed under deal {deal.deal_id if deal else outcome.deal_id}"
        if outcome.report_id:
            text += f", filed as report {report_number(outcome.report_id)} (an aggregate claim)"
        if decision == "reject" and reason:
            text += f" ({reason_label(reason)})"
        self.pages.flash(ctx, "ok", text + ". Press u to undo.")
        query, filters_qs = ctx.queue_filters()
        if ctx.field("return") == "queue":
            page = {k: v for k, v in parse_qsl(ctx.field("page")) if k in ("after", "before")}
            return RedirectResponse(with_query("/queue", {**queue_params(query), **page}), 303)
        # Advance: the next entry of the same queue after this one, else the top of it.
        cursor = cursor_of(cand, query)
        queue = ctx.store.candidates
        nxt = queue.queue_page(query, 1, after=cursor) or queue.queue_page(query, 1)
        if nxt:
            return RedirectResponse(with_query(f"/candidate/{nxt[0].id}", filters_qs), 303)
        self.pages.flash(ctx, "info", "Nothing left in this queue.")
        return RedirectResponse(with_query("/queue", filters_qs), 303)

    def edit(self, ctx: Ctx, candidate_id: int) -> Response:
        posted = self.posted(ctx, candidate_id)
        if isinstance(posted, Response):
            return posted
        _, version, edits = posted
        note = ctx.field("note") or None
        if not edits and note is None:
            self.pages.flash(ctx, "info", "Nothing changed.")
        else:
            try:
                review.edit(ctx.store, candidate_id, ctx.user, edits, version=version, note=note,
                            known_vendors=self.vendor_ids)
            except review.ConflictError as exc:
                return self.candidate_page(ctx, candidate_id, status=409, conflict=str(exc))
            except review.ReviewError as exc:
                return self.candidate_page(ctx, candidate_id, status=400, values=edits,
                                           error=str(exc))
            self.pages.flash(ctx, "ok", f"Saved your changes to #{candidate_id} (not decided yet).")
        _, filters_qs = ctx.queue_filters()
        return RedirectResponse(with_query(f"/candidate/{candidate_id}", filters_qs), 303)

    def bulk_reject(self, ctx: Ctx) -> Response:
        _, filters_qs = ctx.queue_filters()
        back = with_query("/queue", filters_qs)
        reason = ctx.field("reason")
        picked: dict[int, int] = {}  # candidate id → the version the reviewer saw
        for value in ctx.fields("pick"):
            ident, _, version = value.partition(":")
            row_id, row_version = parse_row_id(ident), parse_row_id(version)
            if row_id is not None and row_version is not None:
                picked[row_id] = row_version
        if not picked:
            self.pages.flash(ctx, "error", "Select candidates first (x, or the boxes), then reject.")
            return RedirectResponse(back, 303)
        if reason not in review.REJECT_REASONS:
            self.pages.flash(ctx, "error", "Choose a reason for the rejection.")
            return RedirectResponse(back, 303)
        try:
            outcomes = review.bulk_reject(ctx.store, list(picked), ctx.user, reason,
                                          versions=picked)
        except review.ReviewError as exc:
            self.pages.flash(ctx, "error", f"Nothing was rejected: {exc}.")
            return RedirectResponse(back, 303)
        n = sum(len(o.candidate_ids) for o in outcomes)
        self.pages.flash(ctx, "ok", f"Rejected {n} candidate(s) as {reason_label(reason)}.")
        return RedirectResponse(back, 303)

    def undo(self, ctx: Ctx) -> Response:
        back = local_path(ctx.field("back"))
        try:
            outcome = review.undo(ctx.store, ctx.user, self.claims)
        except review.ReviewError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(back, 303)
        ids = ", ".join(f"#{i}" for i in outcome.candidate_ids)
        self.pages.flash(ctx, "ok", f"Undone: {ids} back to {outcome.status}.")
        if urlsplit(back).path == "/queue":
            return RedirectResponse(back, 303)
        return RedirectResponse(with_query(f"/candidate/{outcome.candidate_ids[0]}",
                                           urlsplit(back).query), 303)
