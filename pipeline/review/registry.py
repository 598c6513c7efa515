"""The registry: confirmed candidates gathered into real-world deals, with their sources and stages.

One deal is one vendor's project with one counterpart in one country; every confirmed candidate
about it (every article, every syndicated copy) is one of its sources. A deal's fields are its
first confirmation's, completed by later ones; its stage follows the most recent report and the
earlier stages stay as history.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from models.errors import DealwatchError
from pipeline.storage import Store

logger = logging.getLogger(__name__)

# A suggestion at least this good files a confirmation under an existing deal without asking.
AUTO_MATCH = 0.75
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "of", "and", "for", "ministry", "department", "government", "national", "state",
         "authority", "agency", "office", "republic", "s"}


class RegistryError(DealwatchError):
    """A registry change that cannot be made (unknown deal, nothing to split, …)."""


@dataclass(frozen=True)
class Suggestion:
    deal: dict[str, Any]
    score: float
    why: str


def _words(text: str | None) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP}


def _types(row: dict[str, Any]) -> set[str]:
    return set(row.get("deal_types") or ([row["deal_type"]] if row.get("deal_type") else []))


def match_score(candidate: dict[str, Any], deal: dict[str, Any]) -> tuple[float, str]:
    """How likely a confirmed candidate reports on this deal (same vendor and country given)."""
    score, why = 0.4, ["same vendor and country"]
    a, b = _words(candidate.get("counterpart")), _words(deal.get("counterpart"))
    if a and b:
        overlap = len(a & b) / min(len(a), len(b))
        if overlap >= 0.5:
            score += 0.3
            why.append("same counterpart")
        elif candidate.get("counterpart_type") and \
                candidate.get("counterpart_type") != deal.get("counterpart_type"):
            score -= 0.2
    if _types(candidate) & _types(deal):
        score += 0.25
        why.append("same kind of project")
    elif _types(candidate) and _types(deal):
        score -= 0.2
    year, deal_year = candidate.get("year"), deal.get("year")
    if year and deal_year and abs(int(year) - int(deal_year)) > 3:
        score -= 0.3
        why.append(f"{year} vs {deal_year}")
    return max(0.0, min(score, 1.0)), ", ".join(why)


def suggest_deals(store: Store, candidate: dict[str, Any]) -> list[Suggestion]:
    """Existing deals this candidate may belong to, best first."""
    vendors = candidate.get("vendors") or ([candidate["vendor"]] if candidate.get("vendor") else [])
    found = []
    for deal in store.registry.deals_like(vendors, candidate.get("country")):
        score, why = match_score(candidate, deal)
        found.append(Suggestion(deal, score, why))
    return sorted(found, key=lambda s: (-s.score, s.deal["id"]))


def _reported(row: dict[str, Any]) -> str | None:
    return row.get("published") or row.get("extracted_at") or row.get("added_at")


def refresh_deal(store: Store, deal_id: int) -> None:
    """Recompute what a deal's sources decide: first and last report, types, current stage."""
    deal = store.registry.deal(deal_id)
    if deal is None:
        return
    sources = store.registry.deal_sources(deal_id)
    dates = sorted(d for s in sources if (d := _reported(s)))
    stages = store.registry.deal_stages(deal_id)
    types: list[str] = list(deal.get("deal_types") or [])
    for source in sources:
        for t in source.get("deal_types") or []:
            if t not in types:
                types.append(t)
    fields: dict[str, Any] = {
        "first_reported": dates[0][:10] if dates else None,
        "last_reported": dates[-1][:10] if dates else None,
        "deal_types": types,
        "deal_type": deal.get("deal_type") or (types[0] if types else None),
    }
    if stages:
        fields["stage"] = stages[-1]["stage"]
    changed = {k: v for k, v in fields.items() if deal.get(k) != v}
    # Called after its sources or stages changed: the exported record did, so a new version.
    store.registry.update_deal(deal_id, changed, touch=True)


def source_changed(store: Store, row: dict[str, Any]) -> None:
    """A confirmed source's fields were corrected (or the correction undone): its stage report
    follows, and so does its deal."""
    if row.get("status") == "confirmed" and row.get("deal_id"):
        store.registry.set_reported_stage(row["id"], row.get("stage"))
        refresh_deal(store, row["deal_id"])


def settle_deals(store: Store, deal_ids: list[int]) -> None:
    """After sources left these deals: a deal with none left is withdrawn, the rest refreshed."""
    for deal_id in dict.fromkeys(deal_ids):
        deal = store.registry.deal(deal_id)
        if deal is None or deal.get("merged_into"):
            continue
        if store.registry.deal_sources(deal_id):
            refresh_deal(store, deal_id)
        else:
            store.registry.delete_deal(deal_id)


def link_source(store: Store, deal_id: int, row: dict[str, Any], reviewer: str,
                batch: str | None) -> None:
    """Make a confirmed candidate a source of a deal, its stage part of the deal's history."""
    store.registry.add_deal_source(deal_id, row["id"], batch)
    if row.get("stage") and row["stage"] != "unknown":
        store.registry.add_stage(deal_id, row["stage"], _reported(row), row["id"], reviewer, batch)


def file_confirmation(store: Store, rows: list[dict[str, Any]], reviewer: str, batch: str,
                      deal_id: int | str | None = None) -> int:
    """File confirmed candidates (one story's copies) under a deal; returns the deal's id.

    deal_id: an existing deal's id, "new" for a new deal, or None to pick the best suggestion
    when it is good enough (AUTO_MATCH) and start a new deal otherwise.
    """
    lead = rows[0]
    if deal_id is None:
        suggestions = suggest_deals(store, lead)
        deal_id = suggestions[0].deal["id"] if suggestions and \
            suggestions[0].score >= AUTO_MATCH else "new"
    if deal_id == "new":
        target = store.registry.insert_deal(lead, reviewer, batch, notes=lead.get("note"))
    else:
        target = int(deal_id)
        deal = store.registry.deal(target)
        if deal is None or deal.get("merged_into"):
            raise RegistryError(f"no deal {deal_id} in the registry")
        # Fill what the deal does not know yet; what it knows stays (a reviewer set it).
        blanks = {name: lead.get(name) for name in ("counterpart", "counterpart_type", "value",
                                                    "currency", "year")
                  if deal.get(name) in (None, "") and lead.get(name) not in (None, "")}
        store.registry.update_deal(target, blanks)
    link_source(store, target, lead, reviewer, batch)
    for row in rows[1:]:  # the story's copies: sources, not new stage reports
        store.registry.add_deal_source(target, row["id"], batch)
    refresh_deal(store, target)
    return target


def merge_deals(store: Store, keep: int, absorb: int) -> None:
    """One real-world deal recorded twice: move every source and stage of `absorb` into `keep`."""
    if keep == absorb:
        raise RegistryError("a deal cannot be merged into itself")
    with store.transaction():
        for deal_id in (keep, absorb):
            deal = store.registry.deal(deal_id)
            if deal is None or deal.get("merged_into"):
                raise RegistryError(f"no deal {deal_id} in the registry")
        store.registry.move_deal_sources(absorb, keep)
        store.registry.update_deal(absorb, {"merged_into": keep})
        refresh_deal(store, keep)


def split_deal(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str) -> int:
    """Two real-world deals recorded as one: move these sources into a new deal; its id."""
    with store.transaction():
        return _split(store, deal_id, candidate_ids, reviewer)


def _split(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str) -> int:
    deal = store.registry.deal(deal_id)
    if deal is None or deal.get("merged_into"):
        raise RegistryError(f"no deal {deal_id} in the registry")
    sources = {s["candidate_id"] for s in store.registry.deal_sources(deal_id)}
    moving = [c for c in candidate_ids if c in sources]
    if not moving or len(moving) == len(sources):
        raise RegistryError("a split moves some of the deal's sources, not none or all of them")
    lead = store.candidates.candidate(moving[0])
    assert lead is not None
    new_id = store.registry.insert_deal(lead, reviewer, None, notes=f"split from {deal['deal_id']}")
    store.registry.move_deal_sources(deal_id, new_id, moving)
    refresh_deal(store, deal_id)
    refresh_deal(store, new_id)
    return new_id
