"""A deal's fields as a reviewer edits them: checked as a candidate's edits are, then recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.registry import DEAL_EDIT_FIELDS, Deal, DealCorrection
from pipeline.review.decisions import ReviewError, clean_edits
from pipeline.review.registry import RegistryError, edit_deal_fields
from pipeline.storage import Store


def clean_deal_edits(edits: Mapping[str, Any], known_vendors: set[str] | None = None,
                     current: Deal | None = None) -> dict[str, Any]:
    """A reviewer's edits of a deal (from a form, the CLI or JSON), validated and normalised as
    `review edit` does a candidate's; `notes` is free text (empty clears it). The first vendor
    listed leads; current: the deal, whose first type stays first when the types are edited and
    still hold it (ticked boxes have no order)."""
    for name in edits:
        if name not in DEAL_EDIT_FIELDS:
            raise RegistryError(f"{name}: not a deal field (one of {', '.join(DEAL_EDIT_FIELDS)})")
    try:
        changes = clean_edits({k: v for k, v in edits.items() if k != "notes"}, known_vendors)
    except ReviewError as exc:
        raise RegistryError(str(exc)) from None
    if "vendors" in changes and not changes["vendors"]:
        raise RegistryError("vendors: a deal has at least one vendor")
    if (current is not None and "deal_types" in edits and "deal_type" not in edits
            and current.deal_type in (changes.get("deal_types") or [])):
        changes["deal_type"] = current.deal_type
    if "notes" in edits:
        changes["notes"] = str(edits["notes"] or "").strip() or None
    return changes


def edit_deal(store: Store, deal_id: int, reviewer: str, edits: Mapping[str, Any], *,
              version: int | None = None, known_vendors: set[str] | None = None
              ) -> DealCorrection:
    """Correct a deal's fields (the deal audit keeps the old values; `deals undo` takes it
    back). version: the one the reviewer saw (a deal changed since is a RegistryConflict)."""
    if not edits:
        raise RegistryError("nothing to change")
    with store.transaction():
        changes = clean_deal_edits(edits, known_vendors, store.registry.deal(deal_id))
        return edit_deal_fields(store, deal_id, reviewer, changes, version=version)
