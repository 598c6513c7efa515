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
    `review edit` does a candidate's; `notes` is free text (empty clears it). current: the deal,
    whose first vendor and type stay first when the lists are edited and still hold them."""
    for name in edits:
        if name not in DEAL_EDIT_FIELDS:
            raise RegistryError(f"{name}: not a deal field (one of {', '.join(DEAL_EDIT_FIELDS)})")
    try:
        changes = clean_edits({k: v for k, v in edits.items() if k != "notes"}, known_vendors)
    except ReviewError as exc:
        raise RegistryError(str(exc)) from None
    if current is not None:
        for single, listed in (("vendor", "vendors"), ("deal_type", "deal_types")):
            if listed in edits and single not in edits and getattr(current, single) in (
                    changes.get(listed) or []):
                changes[single] = getattr(current, single)
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
