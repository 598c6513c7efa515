"""Deal registry routes: the list of deals, one deal with its sources, and its corrections (edit,
merge after a confirmation page, split, undo)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import RedirectResponse, Response

from models.registry import (
    CONFIDENCE_GRADES,
    Deal,
    DealCorrection,
    deal_number,
    parse_deal_number,
    parse_row_id,
)
from pipeline.config import Config
from pipeline.review import registry
from pipeline.review.corrections import edit_deal
from pipeline.review.export import WRITERS
from pipeline.review.filters import FilterError
from pipeline.review.views import deal_listing, deal_view, field_text, merge_view
from pipeline.review.web.forms import (
    DEAL_TYPE_OPTIONS,
    STAGE_OPTIONS,
    SortLinks,
    as_sentence,
    deal_params,
    download,
    download_format,
    download_links,
    local_path,
    parse_deal_query,
    plain,
    with_query,
)
from pipeline.review.web.pages import Ctx, Handler, Pages

logger = logging.getLogger(__name__)

# The fields of a deal's edit form, in the order shown (the first vendor and type lead the lists).
DEAL_FORM_FIELDS = ("vendors", "country", "counterpart", "counterpart_type", "deal_types",
                    "stage", "value", "currency", "year", "notes")


def deal_url(deal_id: int, action: str = "") -> str:
    """A deal's address by its registry id: /deal/dw-000003 (and /deal/dw-000003/merge)."""
    return f"/deal/{deal_number(deal_id)}" + (f"/{action}" if action else "")


def deal_form_values(deal: Deal) -> dict[str, Any]:
    """A deal's fields as its edit form shows them."""
    values: dict[str, Any] = {name: plain(getattr(deal, name)) for name in DEAL_FORM_FIELDS}
    values["vendors"] = ", ".join(registry.candidate_vendors(deal))
    values["deal_types"] = list(deal.deal_types or ([deal.deal_type] if deal.deal_type else []))
    values["notes"] = deal.notes or ""
    return values


def posted_deal_edits(form: Mapping[str, Any], chosen_types: list[str], deal: Deal
                      ) -> dict[str, Any]:
    """The edit form's fields whose submitted value differs from the deal's: only those are
    written, so an untouched field keeps its exact stored value."""
    shown = deal_form_values(deal)
    edits: dict[str, Any] = {}
    for name in DEAL_FORM_FIELDS:
        if name == "deal_types":
            # checkboxes: none ticked sends nothing, so the form says it showed them
            if "deal_types_shown" in form and set(chosen_types) != set(shown["deal_types"]):
                edits[name] = [t for t in shown["deal_types"] if t in chosen_types] + [
                    t for t in chosen_types if t not in shown["deal_types"]]
        elif name in form:
            value = str(form[name]).strip()
            if name == "vendors":
                if [v.strip() for v in value.split(",") if v.strip()] != \
                        registry.candidate_vendors(deal):
                    edits[name] = value
            elif value != str(shown[name]).strip():
                edits[name] = value
    return edits


class DealRoutes:
    """The registry as reviewers see it: deals, their sources and stages, and corrections."""

    def __init__(self, config: Config, pages: Pages, review_undo: Handler):
        self.pages = pages
        self.vendor_ids = config.vendor_ids()
        self.watchlist = config.watchlist
        self.official = registry.official_source_ids(config.sources)
        self.review_undo = review_undo  # undo of a review decision (the queue's)

    def deals(self, ctx: Ctx) -> Response:
        """The deals list: filtered, searched and sorted by its query string, as a page or (with
        format=csv|json) as registry records to download, the export's own."""
        params = ctx.request.query_params
        try:
            query = parse_deal_query(params, params.getlist("confidence"), self.watchlist)
            fmt = download_format(params)
        except FilterError as exc:
            return self.pages.error(ctx, 400, "Unknown filter value", as_sentence(exc))
        listing = deal_listing(ctx.store, query, self.official, records=fmt is not None)
        if fmt is not None:
            return download(WRITERS[fmt](listing.records), "deals", fmt)
        current = deal_params(query)
        filters = [(k, v) for k, v in current if k not in ("sort", "order")]
        facets = ctx.store.registry.deal_facets()
        return self.pages.render(
            ctx, "deals.html", deals=listing.deals, total=listing.total, query=query,
            grades=list(query.confidence), GRADES=CONFIDENCE_GRADES,
            sorting=SortLinks("/deals", filters, query.sort, query.descending,
                              natural=lambda key: False),
            grade_url=lambda grade: with_query("/deals", [
                *((k, v) for k, v in current if k != "confidence"),
                *([("confidence", grade)] if grade else [])]),
            download_url=download_links("/deals", current),
            options={"vendors": self.pages.vendor_options,
                     "countries": self.pages.country_choices(facets["country"]),
                     "years": [(str(y), str(y)) for y in reversed(facets["year"])],
                     "deal_types": DEAL_TYPE_OPTIONS, "stages": STAGE_OPTIONS},
            filtered=query.filtered, clear_url=with_query("/deals", [
                (k, v) for k, v in current if k in ("sort", "order")]))

    def deal(self, ctx: Ctx, deal_id: int) -> Response:
        # /deal/dw-000003 is its address; /deal/3 (old links, bookmarks) shows it too
        return self.deal_page(ctx, deal_id)

    def deal_page(self, ctx: Ctx, deal_id: int, *, status: int = 200, error: str = "",
                  conflict: str = "", values: Mapping[str, Any] | None = None) -> Response:
        try:
            view = deal_view(ctx.store, deal_id, ctx.user, self.official)
        except registry.RegistryError:
            return self.pages.error(ctx, 404, "No such deal",
                                    f"There is no deal {deal_number(deal_id)}.")
        return self.pages.render(ctx, "deal.html", status=status, deal=view.deal,
                                 sources=view.sources, stages=view.stages, similar=view.similar,
                                 merged_into=view.merged_into, corrections=view.corrections,
                                 undoable=view.undoable, values=values or deal_form_values(view.deal),
                                 triangulation=view.triangulation, official=view.official,
                                 error=error, conflict=conflict, edit_open=bool(error or conflict))

    # -- edit --

    def edit(self, ctx: Ctx, deal_id: int) -> Response:
        deal = ctx.store.registry.deal(deal_id)
        if deal is None:
            return self.pages.error(ctx, 404, "No such deal",
                                    f"There is no deal {deal_number(deal_id)}.")
        version = parse_row_id(ctx.field("version"))
        if version is None:
            return self.pages.no_version(ctx, "deal")
        form: Mapping[str, Any] = ctx.form or {}
        edits = posted_deal_edits(form, ctx.fields("deal_types"), deal)
        if not edits:
            self.pages.flash(ctx, "info", "Nothing changed.")
            return RedirectResponse(deal_url(deal_id), 303)
        submitted = {**deal_form_values(deal), **{k: ctx.field(k) for k in DEAL_FORM_FIELDS
                                                  if k in form and k != "deal_types"},
                     "deal_types": ctx.fields("deal_types")}
        try:
            correction = edit_deal(ctx.store, deal_id, ctx.user, edits, version=version,
                                   known_vendors=self.vendor_ids)
        except registry.NothingToChange:
            self.pages.flash(ctx, "info", "Nothing changed.")
            return RedirectResponse(deal_url(deal_id), 303)
        except registry.RegistryConflict as exc:
            return self.deal_page(ctx, deal_id, status=409, conflict=str(exc))
        except registry.RegistryError as exc:
            return self.deal_page(ctx, deal_id, status=400, error=str(exc), values=submitted)
        changes = "; ".join(f"{name}: {field_text(before)} → {field_text(after)}"
                            for name, (before, after) in correction.changes.items())
        self.pages.flash(ctx, "ok", f"Saved {deal.deal_id}: {changes}. Undo (u) takes it back.")
        return RedirectResponse(deal_url(deal_id), 303)

    # -- merge: a confirmation page first --

    def absorb_choice(self, ctx: Ctx) -> int | None:
        """The deal to merge in: typed in `other`, else picked in `absorb` (a form or a query)."""
        params = ctx.form if ctx.form is not None else ctx.request.query_params
        for name in ("other", "absorb"):
            value = params.get(name)
            if isinstance(value, str) and value.strip():
                return parse_deal_number(value)
        return None

    def merge_page(self, ctx: Ctx, deal_id: int, absorb: int, *, status: int = 200,
                   error: str = "", conflict: str = "") -> Response:
        try:
            view = merge_view(ctx.store, deal_id, absorb)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(deal_url(deal_id), 303)
        return self.pages.render(ctx, "merge.html", status=status, view=view,
                                 keep=view.preview.keep, absorb=view.preview.absorb,
                                 error=error, conflict=conflict)

    def merge_form(self, ctx: Ctx, deal_id: int) -> Response:
        absorb = self.absorb_choice(ctx)
        if absorb is None:
            self.pages.flash(ctx, "error", "choose the deal to merge into this one")
            return RedirectResponse(deal_url(deal_id), 303)
        return self.merge_page(ctx, deal_id, absorb)

    def merge(self, ctx: Ctx, deal_id: int) -> Response:
        absorb = self.absorb_choice(ctx)
        if absorb is None:
            self.pages.flash(ctx, "error", "choose the deal to merge into this one")
            return RedirectResponse(deal_url(deal_id), 303)
        seen = {deal_id: parse_row_id(ctx.field("keep_version")),
                absorb: parse_row_id(ctx.field("absorb_version"))}
        if ctx.field("confirmed") != "yes" or None in seen.values():
            return self.merge_page(ctx, deal_id, absorb)  # not merged unseen
        try:
            view = merge_view(ctx.store, deal_id, absorb)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(deal_url(deal_id), 303)
        if view.serious and ctx.field("different") != "checked":
            return self.merge_page(ctx, deal_id, absorb, status=400, error=(
                "Tick the box to say you checked them: these look like two deals."))
        try:
            registry.merge_deals(ctx.store, deal_id, absorb, ctx.user,
                                 seen={k: v for k, v in seen.items() if v is not None})
        except registry.RegistryConflict as exc:
            return self.merge_page(ctx, deal_id, absorb, status=409, conflict=str(exc))
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(deal_url(deal_id), 303)
        sources = len(ctx.store.registry.deal_sources(deal_id))
        self.pages.flash(ctx, "ok", f"Merged {deal_number(absorb)} into {deal_number(deal_id)} "
                         f"({sources} sources now). Undo (u) takes it back.")
        return RedirectResponse(deal_url(deal_id), 303)

    # -- official sources --

    def source_official(self, ctx: Ctx, deal_id: int) -> Response:
        """A reviewer says whether one of the deal's sources is an official statement."""
        candidate_id, choice = parse_row_id(ctx.field("source")), ctx.field("official")
        if candidate_id is None or choice not in ("yes", "no", "unset"):
            return self.pages.error(ctx, 400, "Bad request", "The form names no source or no "
                                    "choice: reload the page and try again.")
        official = {"yes": True, "no": False}.get(choice)  # unset: sources.toml decides
        try:
            registry.set_source_official(ctx.store, deal_id, candidate_id, official)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(deal_url(deal_id), 303)
        view = deal_view(ctx.store, deal_id, official=self.official)
        word = {True: "an official statement", False: "not an official statement",
                None: "as sources.toml says"}[official]
        self.pages.flash(ctx, "ok", f"Source #{candidate_id} is {word}; {view.deal.deal_id} is "
                         f"graded {view.record['confidence']} now.")
        return RedirectResponse(deal_url(deal_id), 303)

    # -- split --

    def split(self, ctx: Ctx, deal_id: int) -> Response:
        ids = [i for i in map(parse_row_id, ctx.fields("source")) if i is not None]
        try:
            split = registry.split_sources(ctx.store, deal_id, ids, ctx.user)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(deal_url(deal_id), 303)
        assert split.other_deal_id is not None
        moved, into = len(split.sources), deal_number(split.other_deal_id)
        self.pages.flash(ctx, "ok", (
            f"Moved {moved} source(s) of {deal_number(deal_id)} back into {into}, as before "
            "the merge." if split.reverses else
            f"Moved {moved} source(s) of {deal_number(deal_id)} into this new deal, {into}.")
            + " Undo (u) takes it back.")
        return RedirectResponse(deal_url(split.other_deal_id), 303)

    # -- undo --

    def undo_correction(self, ctx: Ctx) -> Response:
        """Take back the reviewer's last registry correction."""
        try:
            undone: DealCorrection = registry.undo_correction(ctx.store, ctx.user)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(local_path(ctx.field("back"), "/deals"), 303)
        self.pages.flash(ctx, "ok", f"Undone: {registry.describe_correction(undone)}.")
        return RedirectResponse(deal_url(undone.deal_id), 303)

    def undo(self, ctx: Ctx) -> Response:
        """The header's Undo (u): the reviewer's last change, a registry correction or a review
        decision, whichever came last."""
        if registry.newer_correction(ctx.store, ctx.user) is not None:
            return self.undo_correction(ctx)
        return self.review_undo(ctx)
