"""The registry: confirmed candidates gathered into real-world deals, with their sources and stages.

One deal is one vendor's project with one counterpart in one country; every confirmed candidate
about it (every article, every syndicated copy) is one of its sources. A deal's fields are its
first confirmation's, completed by later ones; its stage follows the most recent report and the
earlier stages stay as history.

The rules are pure functions of records (`match_score`, `rank_suggestions`, `best_match`,
`blanks_to_fill`, `refreshed_fields`); the functions that take the store fetch the records,
apply a rule and write what it decided.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from models.errors import DealwatchError
from models.registry import Deal, DealSource, DealStage, QueueEntry
from pipeline.storage import Store

logger = logging.getLogger(__name__)

# A suggestion at least this good files a confirmation under an existing deal without asking.
AUTO_MATCH = 0.75
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "of", "and", "for", "ministry", "department", "government", "national", "state",
         "authority", "agency", "office", "republic", "s"}
# What a confirmation fills in on a deal that does not know it yet.
FILLABLE_FIELDS = ("counterpart", "counterpart_type", "value", "currency", "year")


class RegistryError(DealwatchError):
    """A registry change that cannot be made (unknown deal, nothing to split, …)."""


@dataclass(frozen=True)
class Suggestion:
    deal: Deal
    score: float
    why: str


def _words(text: str | None) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP}


def _types(types: list[str] | None, single: str | None) -> set[str]:
    return set(types or ([single] if single else []))


def match_score(candidate: QueueEntry, deal: Deal) -> tuple[float, str]:
    """How likely a confirmed candidate reports on this deal (same vendor and country given)."""
    score, why = 0.4, ["same vendor and country"]
    a, b = _words(candidate.counterpart), _words(deal.counterpart)
    if a and b:
        overlap = len(a & b) / min(len(a), len(b))
        if overlap >= 0.5:
            score += 0.3
            why.append("same counterpart")
        elif candidate.counterpart_type and candidate.counterpart_type != deal.counterpart_type:
            score -= 0.2
    candidate_types = _types(candidate.deal_types, candidate.deal_type)
    deal_types = _types(deal.deal_types, deal.deal_type)
    if candidate_types & deal_types:
        score += 0.25
        why.append("same kind of project")
    elif candidate_types and deal_types:
        score -= 0.2
    year, deal_year = candidate.year, deal.year
    if year and deal_year and abs(int(year) - int(deal_year)) > 3:
        score -= 0.3
        why.append(f"{year} vs {deal_year}")
    return max(0.0, min(score, 1.0)), ", ".join(why)


def rank_suggestions(candidate: QueueEntry, deals: Iterable[Deal]) -> list[Suggestion]:
    """These deals as suggestions for the candidate, best first."""
    found = [Suggestion(deal, *match_score(candidate, deal)) for deal in deals]
    return sorted(found, key=lambda s: (-s.score, s.deal.id))


def best_match(suggestions: list[Suggestion]) -> int | None:
    """The deal a confirmation is filed under without asking: the best suggestion when it is
    good enough (AUTO_MATCH); None for a new deal."""
    if suggestions and suggestions[0].score >= AUTO_MATCH:
        return suggestions[0].deal.id
    return None


def candidate_vendors(record: QueueEntry | Deal) -> list[str]:
    """A candidate's or a deal's vendors (an older record may know only its first)."""
    return list(record.vendors or ([record.vendor] if record.vendor else []))


def suggest_deals(store: Store, candidate: QueueEntry) -> list[Suggestion]:
    """Existing deals this candidate may belong to, best first."""
    deals = store.registry.deals_like(candidate_vendors(candidate), candidate.country)
    return rank_suggestions(candidate, deals)


def _reported(candidate: QueueEntry) -> str | None:
    """When a candidate's article reported it (its date, else when it was extracted)."""
    return candidate.published or candidate.extracted_at


def refreshed_fields(deal: Deal, sources: list[DealSource], stages: list[DealStage]
                     ) -> dict[str, Any]:
    """What a deal's sources and stages decide (first and last report, types, current stage):
    the fields that differ from the deal's."""
    dates = sorted(d for s in sources if (d := s.reported))
    types: list[str] = list(deal.deal_types or [])
    for source in sources:
        for t in source.deal_types or []:
            if t not in types:
                types.append(t)
    fields: dict[str, Any] = {
        "first_reported": dates[0][:10] if dates else None,
        "last_reported": dates[-1][:10] if dates else None,
        "deal_types": types,
        "deal_type": deal.deal_type or (types[0] if types else None),
    }
    if stages:
        fields["stage"] = stages[-1].stage
    return {k: v for k, v in fields.items() if getattr(deal, k) != v}


def blanks_to_fill(deal: Deal, lead: QueueEntry) -> dict[str, Any]:
    """What a confirmation adds to a deal: the FILLABLE_FIELDS the deal does not know yet and
    the candidate does (what the deal knows stays: a reviewer set it)."""
    return {name: getattr(lead, name) for name in FILLABLE_FIELDS
            if getattr(deal, name) in (None, "") and getattr(lead, name) not in (None, "")}


def _live_deal(store: Store, deal_id: int | None) -> Deal:
    deal = store.registry.deal(deal_id) if deal_id is not None else None
    if deal is None or deal.merged_into:
        raise RegistryError(f"no deal {deal_id} in the registry")
    return deal


def refresh_deal(store: Store, deal_id: int) -> None:
    """Recompute what a deal's sources decide: first and last report, types, current stage."""
    deal = store.registry.deal(deal_id)
    if deal is None:
        return
    changed = refreshed_fields(deal, store.registry.deal_sources(deal_id),
                               store.registry.deal_stages(deal_id))
    # Called after its sources or stages changed: the exported record did, so a new version.
    store.registry.update_deal(deal_id, changed, touch=True)


def source_changed(store: Store, candidate: QueueEntry) -> None:
    """A confirmed source's fields were corrected (or the correction undone): its stage report
    follows, and so does its deal."""
    if candidate.status == "confirmed" and candidate.deal_id:
        store.registry.set_reported_stage(candidate.id, candidate.stage)
        refresh_deal(store, candidate.deal_id)


def settle_deals(store: Store, deal_ids: list[int]) -> None:
    """After sources left these deals: a deal with none left is withdrawn, the rest refreshed."""
    for deal_id in dict.fromkeys(deal_ids):
        deal = store.registry.deal(deal_id)
        if deal is None or deal.merged_into:
            continue
        if store.registry.deal_sources(deal_id):
            refresh_deal(store, deal_id)
        else:
            store.registry.delete_deal(deal_id)


def link_source(store: Store, deal_id: int, candidate: QueueEntry, reviewer: str,
                batch: str | None) -> None:
    """Make a confirmed candidate a source of a deal, its stage part of the deal's history."""
    store.registry.add_deal_source(deal_id, candidate.id, batch)
    if candidate.stage and candidate.stage != "unknown":
        store.registry.add_stage(deal_id, candidate.stage, _reported(candidate), candidate.id,
                                 reviewer, batch)


def file_confirmation(store: Store, candidates: Sequence[QueueEntry], reviewer: str, batch: str,
                      deal_id: int | str | None = None) -> int:
    """File confirmed candidates (one story's copies) under a deal; returns the deal's id.

    deal_id: an existing deal's id, "new" for a new deal, or None to pick the best suggestion
    when it is good enough (AUTO_MATCH) and start a new deal otherwise.
    """
    lead = candidates[0]
    if deal_id is None:
        deal_id = best_match(suggest_deals(store, lead)) or "new"
    if deal_id == "new":
        target = store.registry.insert_deal(lead.fields(), reviewer, batch, notes=lead.note)
    else:
        target = int(deal_id)
        store.registry.update_deal(target, blanks_to_fill(_live_deal(store, target), lead))
    link_source(store, target, lead, reviewer, batch)
    for copy in candidates[1:]:  # the story's copies: sources, not new stage reports
        store.registry.add_deal_source(target, copy.id, batch)
    refresh_deal(store, target)
    return target


def merge_deals(store: Store, keep: int, absorb: int) -> None:
    """One real-world deal recorded twice: move every source and stage of `absorb` into `keep`."""
    if keep == absorb:
        raise RegistryError("a deal cannot be merged into itself")
    with store.transaction():
        for deal_id in (keep, absorb):
            _live_deal(store, deal_id)
        store.registry.move_deal_sources(absorb, keep)
        store.registry.update_deal(absorb, {"merged_into": keep})
        refresh_deal(store, keep)


def split_deal(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str) -> int:
    """Two real-world deals recorded as one: move these sources into a new deal; its id."""
    with store.transaction():
        return _split(store, deal_id, candidate_ids, reviewer)


def _split(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str) -> int:
    deal = _live_deal(store, deal_id)
    sources = {s.candidate_id for s in store.registry.deal_sources(deal_id)}
    moving = [c for c in candidate_ids if c in sources]
    if not moving or len(moving) == len(sources):
        raise RegistryError("a split moves some of the deal's sources, not none or all of them")
    lead = store.candidates.candidate(moving[0])
    assert lead is not None
    new_id = store.registry.insert_deal(lead.fields(), reviewer, None,
                                        notes=f"split from {deal.deal_id}")
    store.registry.move_deal_sources(deal_id, new_id, moving)
    refresh_deal(store, deal_id)
    refresh_deal(store, new_id)
    return new_id
