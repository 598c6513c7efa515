"""Deal registry routes: the list of deals, one deal with its sources, merging and splitting."""

from __future__ import annotations

import logging

from starlette.responses import RedirectResponse, Response

from pipeline.review import registry
from pipeline.review.views import deal_view
from pipeline.review.web.forms import parse_row_id
from pipeline.review.web.pages import Ctx, Pages

logger = logging.getLogger(__name__)


class DealRoutes:
    """The registry as reviewers see it: deals, their sources and stages, merges and splits."""

    def __init__(self, pages: Pages):
        self.pages = pages

    def deals(self, ctx: Ctx) -> Response:
        deals = ctx.store.registry.deals()
        return self.pages.render(ctx, "deals.html", deals=deals,
                                 source_counts=ctx.store.registry.deal_source_counts())

    def deal(self, ctx: Ctx, deal_id: int) -> Response:
        try:
            view = deal_view(ctx.store, deal_id)
        except registry.RegistryError:
            return self.pages.error(ctx, 404, "No such deal", f"There is no deal {deal_id}.")
        return self.pages.render(ctx, "deal.html", deal=view.deal, sources=view.sources,
                                 stages=view.stages, similar=view.similar,
                                 merged_into=view.merged_into)

    def merge(self, ctx: Ctx, deal_id: int) -> Response:
        absorb = parse_row_id(ctx.field("absorb"))
        try:
            if absorb is None:
                raise registry.RegistryError("choose the deal to merge into this one")
            registry.merge_deals(ctx.store, deal_id, absorb)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(f"/deal/{deal_id}", 303)
        logger.info("%s merged deal %s into %d", ctx.user, absorb, deal_id)
        self.pages.flash(ctx, "ok", f"Merged deal {absorb} into this one.")
        return RedirectResponse(f"/deal/{deal_id}", 303)

    def split(self, ctx: Ctx, deal_id: int) -> Response:
        ids = [i for i in map(parse_row_id, ctx.fields("source")) if i is not None]
        try:
            new_id = registry.split_deal(ctx.store, deal_id, ids, ctx.user)
        except registry.RegistryError as exc:
            self.pages.flash(ctx, "error", str(exc))
            return RedirectResponse(f"/deal/{deal_id}", 303)
        logger.info("%s split %s from deal %d into %d", ctx.user, ids, deal_id, new_id)
        self.pages.flash(ctx, "ok", f"Moved {len(ids)} source(s) into this new deal.")
        return RedirectResponse(f"/deal/{new_id}", 303)
