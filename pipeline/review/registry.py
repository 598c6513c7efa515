"""The registry: confirmed candidates gathered into real-world deals, with their sources and stages.

One deal is one vendor's project with one counterpart in one country; every confirmed candidate
about it (every article, every syndicated copy) is one of its sources. A deal's fields are its
first confirmation's, completed by later ones; its stage follows the most recent report and the
earlier stages stay as history.

Reviewers correct the registry by merging deals, splitting them and editing their fields; each
correction goes into the append-only deal audit (`deal_corrections`) with what it moved and the
fields as they were, so `undo_correction` can take the reviewer's latest one back.

The rules are pure functions of records (`match_score`, `rank_suggestions`, `best_match`,
`blanks_to_fill`, `refreshed_fields`, `merge_preview`, `kept_types`, `describe_correction`,
`independent_sources`, `confidence_grade`, `triangulate`); the
functions that take the store fetch the records, apply a rule and write what it decided.

Long because the registry's rules belong together: filing, corrections and their undo, and the
weighing of a deal's evidence (triangulation), which all read the same sources.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from models.config import Source
from models.errors import DealwatchError
from models.registry import (
    SNAPSHOT_FIELDS,
    Deal,
    DealCorrection,
    DealSource,
    DealStage,
    NewCorrection,
    QueueEntry,
    Triangulation,
    deal_number,
)
from pipeline.storage import Store
from pipeline.urls import host_of, registered_domain

logger = logging.getLogger(__name__)

# A suggestion at least this good files a confirmation under an existing deal without asking.
AUTO_MATCH = 0.75
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "of", "and", "for", "ministry", "department", "government", "national", "state",
         "authority", "agency", "office", "republic", "s"}
# What a confirmation fills in on a deal that does not know it yet.
FILLABLE_FIELDS = ("counterpart", "counterpart_type", "value", "currency", "year")
# What a confirmation into an existing deal may change on it and a refresh would not take back
# when its source leaves: the blanks it fills, the types it adds, the stage of a deal with no
# stage history left. Kept with the source (`deal_sources.filled`) for its taking out to put
# back; the dates follow the sources on every refresh anyway.
FILLED_FIELDS = (*FILLABLE_FIELDS, "deal_type", "deal_types", "stage")


# Who merged, when code that names no reviewer merges (scripts, tests).
UNKNOWN_REVIEWER = "unknown"


class RegistryError(DealwatchError):
    """A registry change that cannot be made (unknown deal, nothing to split, …)."""


class RegistryConflict(RegistryError):
    """A deal changed after the reviewer looked at it, or after the correction to undo."""


class NothingToChange(RegistryError):
    """An edit that gives a deal the values it has."""


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
    """Existing deals this candidate may belong to, best first (none for an aggregate claim:
    confirming one files a report, never a deal)."""
    if candidate.kind == "aggregate":
        return []
    deals = store.registry.deals_like(candidate_vendors(candidate), candidate.country)
    return rank_suggestions(candidate, deals)


def known_matches(store: Store, entries: Iterable[QueueEntry]) -> dict[int, Deal]:
    """The deal each undecided deal candidate here would be filed under, confirmed as it is
    (the best_match of its suggest_deals), by candidate id: what a page of the queue says, read
    in one query for the page."""
    waiting = [e for e in entries if e.kind == "deal" and e.deal_id is None
               and e.status in ("pending", "deferred")]
    by_country: dict[str | None, list[Deal]] = {}
    for deal in store.registry.deals_of({v for e in waiting for v in candidate_vendors(e)},
                                        {e.country for e in waiting}):
        by_country.setdefault(deal.country, []).append(deal)
    found: dict[int, Deal] = {}
    for entry in waiting:
        vendors = set(candidate_vendors(entry))
        mine = [d for d in by_country.get(entry.country, []) if vendors & set(d.vendors)]
        match = best_match(rank_suggestions(entry, mine))
        if match is not None:
            found[entry.id] = next(d for d in mine if d.id == match)
    return found


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


# --- triangulation: how well a deal is attested (README, "Triangulation and confidence") ---

# Independent sources a deal needs for each grade, when none of them is official.
GRADE_A_INDEPENDENT = 3
GRADE_B_INDEPENDENT = 2


def _publisher_keys(source: DealSource) -> list[tuple[str, str]]:
    """What ties a source to others of the same outlet or story: its article's near-duplicate
    cluster, its site's name and its URL's registered domain."""
    keys: list[tuple[str, str]] = []
    if source.cluster_id is not None:
        keys.append(("cluster", str(source.cluster_id)))
    if source.site and source.site.strip():
        keys.append(("site", " ".join(source.site.lower().split())))
    host = host_of(source.url)
    if host:
        keys.append(("domain", registered_domain(host)))
    return keys


def independent_sources(sources: Sequence[DealSource]) -> int:
    """How many independent reports a deal has: sources tied by a shared cluster (syndicated
    copies), site name or registered domain (one outlet's repeats) count once, also through
    each other (a copy on outlet B of a story outlet A ran twice is one report)."""
    parent = list(range(len(sources)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, source in enumerate(sources):
        keys = _publisher_keys(source)
        if not keys:  # nothing says who published it: it counts on its own
            continue
        for key in keys:
            if key in owner:
                parent[root(i)] = root(owner[key])
            else:
                owner[key] = i
    return len({root(i) for i in range(len(sources))})


def official_source_ids(sources: Iterable[Source]) -> frozenset[str]:
    """The configured sources whose articles are official statements (`official = true`)."""
    return frozenset(s.id for s in sources if s.official)


def is_official(source: DealSource, official_source_ids: Collection[str]) -> bool:
    """A reviewer's word on a source, else its configured source's `official`."""
    if source.official is not None:
        return source.official
    return source.source_id is not None and source.source_id in official_source_ids


def confidence_grade(independent: int, official: bool) -> str:
    """A: an official statement, or GRADE_A_INDEPENDENT independent outlets; B: two
    independent outlets; C: one outlet (however many times it, or its syndicators, ran it)."""
    if official or independent >= GRADE_A_INDEPENDENT:
        return "A"
    if independent >= GRADE_B_INDEPENDENT:
        return "B"
    return "C"


def triangulate(sources: Sequence[DealSource], official_source_ids: Collection[str] = (),
                deal: Deal | None = None) -> Triangulation:
    """A deal's sources weighed: how many, how many independent, any official, when first and
    last reported, and the grade they give. official_source_ids: the configured sources marked
    `official = true` in sources.toml. deal: the deal, whose registries' source_urls (a known
    deal's, and those of the known deals merged into it) are more sources, each one's
    registered domain its publisher, with no date."""
    if deal is not None:
        sources = [*sources, *(DealSource(known.id, 0, url=known.source_url, official=False)
                               for known in deal.known_deals() if known.source_url)]
    dates = sorted(d for s in sources if (d := s.reported))
    independent = independent_sources(sources)
    official = any(is_official(s, official_source_ids) for s in sources)
    return Triangulation(
        sources=len(sources), independent_sources=independent, official_source=official,
        first_reported=dates[0][:10] if dates else None,
        last_reported=dates[-1][:10] if dates else None,
        confidence=confidence_grade(independent, official))


def set_source_official(store: Store, deal_id: int, candidate_id: int, official: bool | None
                        ) -> DealSource:
    """A reviewer says whether a deal's source is an official statement (None: back to what
    sources.toml says). The deal's record changes, so it gets a new version."""
    with store.transaction():
        _live_deal(store, deal_id)
        source = next((s for s in store.registry.deal_sources(deal_id)
                       if s.candidate_id == candidate_id), None)
        if source is None:
            raise RegistryError(f"candidate #{candidate_id} is no source of "
                                f"{deal_number(deal_id)}")
        store.registry.set_source_official(candidate_id, official)
        store.registry.update_deal(deal_id, {}, touch=True)
    return replace(source, official=official)


def blanks_to_fill(deal: Deal, lead: QueueEntry | Deal) -> dict[str, Any]:
    """What a confirmation (or a merge) adds to a deal: the FILLABLE_FIELDS the deal does not
    know yet and the candidate (or the deal merged into it) does (what the deal knows stays: a
    reviewer set it)."""
    return {name: getattr(lead, name) for name in FILLABLE_FIELDS
            if getattr(deal, name) in (None, "") and getattr(lead, name) not in (None, "")}


def _live_deal(store: Store, deal_id: int | None) -> Deal:
    deal = store.registry.deal(deal_id) if deal_id is not None else None
    if deal is None:
        name = deal_number(deal_id) if deal_id is not None else "given"
        raise RegistryError(f"no deal {name} in the registry")
    if deal.merged_into:
        raise RegistryError(f"{deal.deal_id} was merged into {deal_number(deal.merged_into)}")
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
    """After sources left these deals: a deal with none left is withdrawn (unless it is a known
    deal, imported from another registry), the rest refreshed."""
    for deal_id in dict.fromkeys(deal_ids):
        deal = store.registry.deal(deal_id)
        if deal is None or deal.merged_into:
            continue
        if deal.external_id or store.registry.deal_sources(deal_id):
            refresh_deal(store, deal_id)  # a known deal stands on its registry, articles or not
        else:
            store.registry.delete_deal(deal_id)


def link_source(store: Store, deal_id: int, candidate: QueueEntry, reviewer: str,
                batch: str | None) -> None:
    """Make a confirmed candidate a source of a deal, its stage part of the deal's history."""
    store.registry.add_deal_source(deal_id, candidate.id, batch)
    if candidate.stage and candidate.stage != "unknown":
        store.registry.add_stage(deal_id, candidate.stage, _reported(candidate), candidate.id,
                                 reviewer, batch)


def file_confirmation(store: Store, candidates: Sequence[QueueEntry], reviewer: str,
                      batch: str | None, deal_id: int | str | None = None) -> int:
    """File confirmed candidates (one story's copies) under a deal; returns the deal's id.

    deal_id: an existing deal's id, "new" for a new deal, or None to pick the best suggestion
    when it is good enough (AUTO_MATCH) and start a new deal otherwise. What the confirmation
    changes on an existing deal's FILLED_FIELDS is kept with the lead's source, for taking it
    out (unfile_batch, unfile_source) to put back.
    """
    lead = candidates[0]
    if lead.kind == "aggregate":  # many deals told at once: a report (review.reports)
        raise RegistryError(f"candidate #{lead.id} is an aggregate claim: it is filed as a "
                            "report, not a deal")
    if deal_id is None:
        deal_id = best_match(suggest_deals(store, lead)) or "new"
    before: Deal | None = None
    if deal_id == "new":
        target = store.registry.insert_deal(lead.fields(), reviewer, batch, notes=lead.note)
    else:
        target = int(deal_id)
        before = _live_deal(store, target)
        store.registry.update_deal(target, blanks_to_fill(before, lead))
    link_source(store, target, lead, reviewer, batch)
    for copy in candidates[1:]:  # the story's copies: sources, not new stage reports
        store.registry.add_deal_source(target, copy.id, batch)
    refresh_deal(store, target)
    after = store.registry.deal(target)
    if before is not None and after is not None:
        filled = {name: [getattr(before, name), getattr(after, name)] for name in FILLED_FIELDS
                  if getattr(before, name) != getattr(after, name)}
        if filled:
            store.registry.record_filled(lead.id, target, filled)
    return target


def _taken_back(deal: Deal, changes: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The values from before of changes (field -> [before, after]) the deal still holds:
    a field changed again since keeps its later value."""
    return {name: before for name, (before, after) in changes.items()
            if getattr(deal, name) == after}


def _put_back(store: Store, fills: list[tuple[int, dict[str, list[Any]]]]) -> None:
    """Take back what confirmations filled in on their deals, newest first: each field that
    still holds what was filled gets its value from before (a reviewer's later edit stands)."""
    for deal_id, fields in reversed(fills):
        deal = store.registry.deal(deal_id)
        if deal is not None:
            store.registry.update_deal(deal_id, _taken_back(deal, fields))


def unfile_batch(store: Store, batch: str) -> list[int]:
    """Take out the sources (and stage reports) a decision filed, as its undo does, and what
    their confirmation filled in on their deals; the deals they were in (to settle_deals)."""
    fills = store.registry.filled_by(batch=batch)
    deals = store.registry.remove_deal_sources(batch)
    _put_back(store, fills)
    return deals


def unfile_source(store: Store, candidate_id: int) -> int | None:
    """Take a candidate out of its deal, as a new decision on it does (a rejection, say), and
    what its confirmation filled in there; the deal it was in (to settle_deals)."""
    fills = store.registry.filled_by(candidate_id=candidate_id)
    deal_id = store.registry.unlink_source(candidate_id)
    _put_back(store, fills)
    return deal_id


# --- corrections: merge, split, edit, and their undoing ------------------------------------


def snapshot(deal: Deal) -> dict[str, Any]:
    """The columns of a deal that corrections change and undo puts back."""
    return {name: getattr(deal, name) for name in SNAPSHOT_FIELDS}


def _in_order(sources: Iterable[DealSource]) -> list[DealSource]:
    """Sources in the registry's order: oldest report first (as store.registry gives them)."""
    return sorted(sources, key=lambda s: (s.reported or "", s.url or ""))


def _stages_in_order(stages: Iterable[DealStage]) -> list[DealStage]:
    return sorted(stages, key=lambda s: (s.reported_at or s.recorded_at, s.id))


@dataclass(frozen=True)
class MergePreview:
    """What merging `absorb` into `keep` would do, for the reviewer to confirm first."""

    keep: Deal
    absorb: Deal
    sources: list[DealSource]  # absorb's sources: they move to keep
    stages: list[DealStage]  # absorb's stage reports: they move too
    changes: dict[str, tuple[Any, Any]]  # keep's fields that change: before, after
    differences: dict[str, tuple[Any, Any]]  # where the two deals disagree: keep's, absorb's
    serious: tuple[str, ...]  # the differences that say "two deals": country, vendors


def merge_preview(keep: Deal, absorb: Deal, keep_sources: list[DealSource],
                  absorb_sources: list[DealSource], keep_stages: list[DealStage],
                  absorb_stages: list[DealStage]) -> MergePreview:
    """The merge of `absorb` into `keep`: keep's blanks filled from absorb, then what all the
    sources and stages decide (dates, types, stage); and where the two deals disagree."""
    merged = replace(keep, **blanks_to_fill(keep, absorb))
    merged = replace(merged, **refreshed_fields(merged, _in_order([*keep_sources, *absorb_sources]),
                                                _stages_in_order([*keep_stages, *absorb_stages])))
    changes = {name: (getattr(keep, name), getattr(merged, name)) for name in SNAPSHOT_FIELDS
               if getattr(keep, name) != getattr(merged, name)}
    differences: dict[str, tuple[Any, Any]] = {}
    serious: list[str] = []
    if keep.country != absorb.country:
        differences["country"] = (keep.country, absorb.country)
        if keep.country and absorb.country:
            serious.append("country")
    vendors = set(candidate_vendors(keep)), set(candidate_vendors(absorb))
    if vendors[0] != vendors[1]:
        differences["vendors"] = (candidate_vendors(keep), candidate_vendors(absorb))
        if all(vendors) and not vendors[0] & vendors[1]:
            serious.append("vendors")
    words = _words(keep.counterpart), _words(absorb.counterpart)
    if all(words) and not words[0] & words[1]:
        differences["counterpart"] = (keep.counterpart, absorb.counterpart)
    types = _types(keep.deal_types, keep.deal_type), _types(absorb.deal_types, absorb.deal_type)
    if all(types) and not types[0] & types[1]:
        differences["deal_types"] = (keep.deal_types, absorb.deal_types)
    if keep.year and absorb.year and abs(int(keep.year) - int(absorb.year)) > 3:
        differences["year"] = (keep.year, absorb.year)
    return MergePreview(keep, absorb, absorb_sources, absorb_stages, changes, differences,
                        tuple(serious))


def kept_types(deal: Deal, staying: list[DealSource], leaving: list[DealSource]) -> list[str]:
    """A deal's types after some of its sources leave: those a staying source reports, and
    those no source reported (a reviewer set them); a type only leaving sources reported goes."""
    stays = [t for s in staying for t in _types(s.deal_types, None)]
    reported = set(stays) | {t for s in leaving for t in _types(s.deal_types, None)}
    kept = [t for t in deal.deal_types or [] if t in stays or t not in reported]
    return kept + [t for t in dict.fromkeys(stays) if t not in kept]


def describe_correction(correction: NewCorrection) -> str:
    """A correction in a few words: "the merge of dw-000002 into dw-000001"."""
    deal = deal_number(correction.deal_id)
    other = deal_number(correction.other_deal_id) if correction.other_deal_id else "?"
    if correction.action == "merge":
        return f"the merge of {other} into {deal}"
    if correction.action == "split":
        return (f"the split of {other} back out of {deal}" if correction.reverses
                else f"the split of {other} from {deal}")
    if correction.action == "edit":
        return f"the edit of {deal} ({', '.join(correction.changes) or 'nothing'})"
    return f"the undoing of a correction of {deal}"


def _record(store: Store, correction: NewCorrection, deal_ids: Iterable[int]) -> DealCorrection:
    """Write a correction to the audit with the versions its deals have now."""
    for deal_id in deal_ids:
        deal = store.registry.deal(deal_id)
        if deal is not None:
            correction.versions[str(deal_id)] = deal.version
    stored = store.registry.add_correction(correction)
    logger.info("%s: %s", correction.reviewer, describe_correction(correction))
    return stored


def _check_seen(deals: Iterable[Deal], seen: Mapping[int, int] | None) -> None:
    for deal in deals:
        if seen is not None and deal.id in seen and seen[deal.id] != deal.version:
            raise RegistryConflict(f"{deal.deal_id} changed after you looked at it (version "
                                   f"{deal.version} now, {seen[deal.id]} then); look again")


def _changed(before: Deal, after: Deal | None) -> dict[str, list[Any]]:
    if after is None:
        return {}
    return {name: [getattr(before, name), getattr(after, name)] for name in SNAPSHOT_FIELDS
            if getattr(before, name) != getattr(after, name)}


def preview_merge(store: Store, keep: int, absorb: int) -> MergePreview:
    """What merging `absorb` into `keep` would do (RegistryError when it cannot be done)."""
    if keep == absorb:
        raise RegistryError("a deal cannot be merged into itself")
    with store.snapshot():
        kept, absorbed = _live_deal(store, keep), _live_deal(store, absorb)
        return merge_preview(kept, absorbed, store.registry.deal_sources(keep),
                             store.registry.deal_sources(absorb), store.registry.deal_stages(keep),
                             store.registry.deal_stages(absorb))


def merge_deals(store: Store, keep: int, absorb: int, reviewer: str = UNKNOWN_REVIEWER, *,
                seen: Mapping[int, int] | None = None) -> DealCorrection:
    """One real-world deal recorded twice: move every source and stage of `absorb` into `keep`
    (as `preview_merge` shows). seen: deal id -> the version the reviewer was shown; a deal
    changed since is a RegistryConflict."""
    with store.transaction():
        preview = preview_merge(store, keep, absorb)
        _check_seen((preview.keep, preview.absorb), seen)
        store.registry.move_deal_sources(absorb, keep)
        store.registry.update_deal(absorb, {"merged_into": keep})
        store.registry.update_deal(keep, {k: after for k, (_, after) in preview.changes.items()},
                                   touch=True)
        return _record(store, NewCorrection(
            reviewer, "merge", keep, absorb, sources=[s.candidate_id for s in preview.sources],
            stages=[s.id for s in preview.stages],
            changes={k: list(v) for k, v in preview.changes.items()},
            before={str(keep): snapshot(preview.keep), str(absorb): snapshot(preview.absorb)},
            batch=secrets.token_hex(8)), (keep, absorb))


def split_deal(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str) -> int:
    """Two real-world deals recorded as one: move these sources out; the id of the deal they
    went to (see split_sources)."""
    split = split_sources(store, deal_id, candidate_ids, reviewer)
    assert split.other_deal_id is not None
    return split.other_deal_id


def split_sources(store: Store, deal_id: int, candidate_ids: list[int], reviewer: str
                  ) -> DealCorrection:
    """Two real-world deals recorded as one: move these sources out of the deal, which keeps
    its id, fields and notes (a type only they reported goes). When they are exactly the
    sources a merge brought in, the merged deal comes back as it was; otherwise they make a new
    deal. Recorded in the deal audit."""
    with store.transaction():
        deal = _live_deal(store, deal_id)
        sources = store.registry.deal_sources(deal_id)
        moving = [c for c in dict.fromkeys(candidate_ids) if c in {s.candidate_id for s in sources}]
        if not moving or len(moving) == len(sources):
            raise RegistryError("a split moves some of the deal's sources, not none or all of them")
        stages = store.registry.deal_stages(deal_id)
        for merge in store.registry.standing_merges(deal_id):
            absorbed = store.registry.deal(merge.other_deal_id or 0)
            if absorbed and absorbed.merged_into == deal_id and set(merge.sources) == set(moving):
                return _unmerge(store, deal, absorbed, merge, stages, reviewer)
        return _split_off(store, deal, sources, moving, stages, reviewer)


def _unmerge(store: Store, deal: Deal, absorbed: Deal, merge: DealCorrection,
             stages: list[DealStage], reviewer: str) -> DealCorrection:
    """A split that takes back a merge: the absorbed deal lives again with its sources and
    stages, and the kept deal's fields the merge changed are as before it (unless changed
    again since)."""
    moving_stages = [s.id for s in stages if s.id in merge.stages or s.candidate_id in merge.sources]
    store.registry.move_deal_sources(deal.id, absorbed.id, merge.sources)
    store.registry.move_stages(moving_stages, absorbed.id)
    store.registry.update_deal(deal.id, _taken_back(deal, merge.changes))
    store.registry.update_deal(absorbed.id, {"merged_into": None})
    refresh_deal(store, deal.id)
    refresh_deal(store, absorbed.id)
    return _record(store, NewCorrection(
        reviewer, "split", deal.id, absorbed.id, sources=list(merge.sources), stages=moving_stages,
        changes=_changed(deal, store.registry.deal(deal.id)),
        before={str(deal.id): snapshot(deal), str(absorbed.id): snapshot(absorbed)},
        batch=secrets.token_hex(8), reverses=merge.id), (deal.id, absorbed.id))


def _split_off(store: Store, deal: Deal, sources: list[DealSource], moving: list[int],
               stages: list[DealStage], reviewer: str) -> DealCorrection:
    """A split into a new deal: its fields are its earliest source's, completed by the others."""
    leaving = [s for s in sources if s.candidate_id in moving]
    staying = [s for s in sources if s.candidate_id not in moving]
    leads = [c for s in leaving if (c := store.candidates.candidate(s.candidate_id))]
    new_id = store.registry.insert_deal(leads[0].fields(), reviewer, None,
                                        notes=f"split from {deal.deal_id}")
    for lead in leads[1:]:
        new = store.registry.deal(new_id)
        assert new is not None
        store.registry.update_deal(new_id, blanks_to_fill(new, lead))
    moving_stages = [s.id for s in stages if s.candidate_id in moving]
    store.registry.move_deal_sources(deal.id, new_id, moving)
    types = kept_types(deal, staying, leaving)
    fields: dict[str, Any] = {
        "deal_types": types,
        "deal_type": deal.deal_type if deal.deal_type in types else (types[0] if types else None)}
    if len(moving_stages) == len(stages):
        fields["stage"] = None  # every stage report left with the sources that made it
    store.registry.update_deal(deal.id, fields)
    refresh_deal(store, deal.id)
    refresh_deal(store, new_id)
    return _record(store, NewCorrection(
        reviewer, "split", deal.id, new_id, sources=moving, stages=moving_stages,
        changes=_changed(deal, store.registry.deal(deal.id)), before={str(deal.id): snapshot(deal)},
        batch=secrets.token_hex(8)), (deal.id, new_id))


def edit_deal_fields(store: Store, deal_id: int, reviewer: str, changes: Mapping[str, Any], *,
                     version: int | None = None) -> DealCorrection:
    """Set a deal's fields to these (validated) values; recorded in the deal audit. A new stage
    joins its stage history as set by hand. version: the one the reviewer saw."""
    with store.transaction():
        deal = _live_deal(store, deal_id)
        if version is not None and deal.version != version:
            raise RegistryConflict(f"{deal.deal_id} was changed (version {deal.version} now, "
                                   f"{version} when you loaded it); reload it and edit again")
        changed = {name: value for name, value in changes.items() if getattr(deal, name) != value}
        if not changed:
            raise NothingToChange(f"nothing to change: {deal.deal_id} has these values already")
        batch = secrets.token_hex(8)
        if "stage" in changed:
            if changed["stage"] in (None, "unknown"):
                if store.registry.deal_stages(deal_id):
                    raise RegistryError(f"stage: {deal.deal_id} has a stage history; set the "
                                        "stage it is at, not none")
            else:
                store.registry.add_stage(deal_id, changed["stage"], None, None, reviewer, batch)
        store.registry.update_deal(deal_id, changed)
        return _record(store, NewCorrection(
            reviewer, "edit", deal_id,
            changes={name: [getattr(deal, name), value] for name, value in changed.items()},
            before={str(deal_id): snapshot(deal)}, batch=batch), (deal_id,))


def newer_correction(store: Store, reviewer: str) -> DealCorrection | None:
    """The reviewer's last registry correction still standing, when it came after their last
    review decision still standing: what an undo of "my last change" takes back first."""
    correction = store.registry.last_correction(reviewer)
    if correction is None:
        return None
    decision = store.reviews.last_batch(reviewer)
    if decision and max(r.id for r in decision) > correction.after_review:
        return None
    return correction


def _expected_version(store: Store, correction: DealCorrection, deal_id: int) -> int | None:
    """The version a deal has when nothing changed it since the correction but corrections
    that were undone again; None when something else did."""
    later = [c for c in store.registry.corrections_of(deal_id) if c.id > correction.id]
    undone = {c.undoes for c in later if c.action == "undo"}
    for c in later:
        if (c.action != "undo" and c.id not in undone) or (
                c.action == "undo" and (c.undoes or 0) <= correction.id):
            return None
    last = later[-1] if later else correction
    return last.versions.get(str(deal_id))


def undo_problem(store: Store, correction: DealCorrection) -> str | None:
    """Why the correction can no longer be undone (a deal withdrawn, or changed since in another
    way), or None: what undo_correction refuses with, and what decides whether a page offers it."""
    what = describe_correction(correction)
    for deal_id in (int(key) for key in correction.versions):
        deal = store.registry.deal(deal_id)
        if deal is None:
            return (f"{deal_number(deal_id)} has been withdrawn since {what} (its last source "
                    "was rejected); it cannot be undone")
        if deal.version != _expected_version(store, correction, deal_id):
            return (f"{deal.deal_id} has changed since {what} ({_change_since(deal, correction)}"
                    "); it cannot be undone: correct it again instead (`deals split`, `deals "
                    "merge`, `deals edit`)")
    return None


def _change_since(deal: Deal, correction: DealCorrection) -> str:
    """What changed a deal after a correction, as far as the registry tells: an import (which
    the deal audit does not record) when one came since, else a decision or a correction."""
    imports = sorted((known.imported_at, known.imported_from or "a file")
                     for known in deal.known_deals()
                     if known.imported_at and known.imported_at >= correction.corrected_at)
    if imports:
        when, name = imports[-1]
        return f"the import of {name} at {when}"
    return "a review decision or another correction"


def undo_correction(store: Store, reviewer: str) -> DealCorrection:
    """Take back the reviewer's latest registry correction still standing: sources, stages and
    fields as they were. Refused when one of its deals changed since in another way (a review
    decision, someone else's correction). Recorded in the deal audit; returns the correction
    taken back."""
    with store.transaction():
        correction = store.registry.last_correction(reviewer)
        if correction is None:
            raise RegistryError(f"{reviewer} has no registry correction to undo")
        problem = undo_problem(store, correction)
        if problem:
            raise RegistryConflict(problem)
        ids = [int(key) for key in correction.versions]
        before = {str(deal_id): snapshot(d) for deal_id in ids if (d := store.registry.deal(deal_id))}
        deal_id, other = correction.deal_id, correction.other_deal_id
        if correction.action == "merge" and other is not None:
            store.registry.move_deal_sources(deal_id, other, correction.sources)
            store.registry.move_stages(correction.stages, other)
        elif correction.action == "split" and other is not None:
            store.registry.move_deal_sources(other, deal_id, correction.sources)
            store.registry.move_stages(correction.stages, deal_id)
            if correction.reverses is None:  # the deal it made goes back into the one it left
                store.registry.update_deal(other, {"merged_into": deal_id})
        else:
            store.registry.remove_stages(correction.batch)
        for key, fields in correction.before.items():
            current = store.registry.deal(int(key))
            assert current is not None
            store.registry.update_deal(int(key), {
                name: value for name, value in fields.items() if getattr(current, name) != value},
                touch=True)
        _record(store, NewCorrection(
            reviewer, "undo", deal_id, other, sources=list(correction.sources),
            stages=list(correction.stages), before=before, batch=secrets.token_hex(8),
            undoes=correction.id), ids)
    return correction
