"""One candidate per deal: sentences about the same deal are merged, the best completed by the rest."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

from models.records import Candidate
from pipeline.analysis.candidates import DEAL_WEIGHTS, STAGE_RANK, kept, logistic_score
from pipeline.analysis.facts import DetectorSettings


def merge_candidates(found: list[tuple[int, Candidate]], detector: DetectorSettings) -> list[Candidate]:
    """Sentences about the same deal (same country, a vendor in common) become one candidate.

    A sentence whose country is only inferred (from a neighbour, the dateline, the one foreign
    country of the story), or that goes on about the vendor of the sentence before without a
    party of its own ("The network will run on to the borders with Niger …"), adds to the
    nearest deal of its vendor instead of opening one.
    """
    groups: list[list[tuple[int, Candidate]]] = []
    sentences: list[list[int]] = []  # each group's sentence indexes, in order
    groups_of: dict[str, set[int]] = defaultdict(set)  # vendor -> the groups that name it

    def distance(g: int, index: int) -> int:
        at = bisect.bisect(sentences[g], index)
        return min(abs(sentences[g][k] - index) for k in (at - 1, at) if 0 <= k < len(sentences[g]))

    def own_country(candidate: Candidate) -> str | None:
        evidence = candidate.signals.get("evidence", {})
        if candidate.kind == "deal" and (evidence.get("country_from") not in ("counterpart", "sentence")
                                         or _continues(candidate, detector.ev.named)):
            return None
        return candidate.country

    # Sentences too weak to keep do not lend the deal their counterpart or amount; one that says
    # the deal was ended, at home or private still says so of the deal it is about.
    found = [item for item in found if kept(item[1], detector.w.keep) or any(
        item[1].signals.get(name) for name in ("domestic", "private", "cancelled"))]
    for item in sorted(found, key=lambda it: (own_country(it[1]) is None, it[0])):
        index, candidate = item
        country = own_country(candidate)
        same = [g for g in sorted(set().union(*(groups_of[v] for v in candidate.vendors)))
                if country is None or groups[g][0][1].country == country]
        if same:
            # A sentence that names no country is about the nearest deal of the same vendor.
            g = min(same, key=lambda k: distance(k, index))
        else:
            g = len(groups)
            groups.append([])
            sentences.append([])
        groups[g].append(item)
        bisect.insort(sentences[g], index)
        for vendor in candidate.vendors:
            groups_of[vendor].add(g)
    return [_combine([c for _, c in g], detector) for g in groups]


def _continues(candidate: Candidate, named: float) -> bool:
    """A sentence about the vendor named before it, with no party of its own."""
    return bool(candidate.signals.get("vendor_nearby")) and candidate.signals.get("counterpart", 0.0) < named


def _combine(group: list[Candidate], detector: DetectorSettings) -> Candidate:
    """One candidate from several: the best-scoring one, completed by the others."""
    if len(group) == 1:
        return group[0]
    best = max(group, key=lambda c: c.score)
    others = [c for c in group if c is not best]
    merged = Candidate(**{name: getattr(best, name) for name in Candidate.__dataclass_fields__})
    merged.vendors = list(dict.fromkeys(
        [*best.vendors[:1], *(v for c in sorted(group, key=lambda c: c.start) for v in c.vendors)]))
    merged.deal_types = list(dict.fromkeys(
        t for c in [best, *others] for t in c.deal_types if t != "other")) or ["other"]
    merged.deal_type = merged.deal_types[0]
    merged.stage = later_stage(
        ((c.stage, c.signals.get("evidence", {}).get("stage_from") != "guess") for c in group),
        best.stage, detector.stage_order)
    # A named body ("Ministry of …", "Telecom Egypt") in one sentence beats a country doing the
    # deal or a bare "government" in the best one, when it is in the same country.
    strongest = detector.ev.named
    if merged.kind == "deal" and best.signals.get("counterpart", 0.0) < strongest:
        named = [c for c in others if c.signals.get("counterpart", 0.0) >= strongest and c.counterpart
                 and c.country in (None, best.country) and not c.signals.get("domestic")]
        if named:
            chosen = max(named, key=lambda c: c.score)
            merged.counterpart, merged.counterpart_type = chosen.counterpart, chosen.counterpart_type
    for name, companion in (("counterpart", "counterpart_type"), ("value", "currency"),
                            ("year", None), ("country", None)):
        filler = next((c for c in others if getattr(c, name) is not None), None)
        if getattr(merged, name) is None and filler:
            setattr(merged, name, getattr(filler, name))
            if companion:
                setattr(merged, companion, getattr(filler, companion))
    merged.signals = {**best.signals, "sentences": len(group)}
    if merged.kind == "deal" and not merged.signals.get("cancelled") and any(
            c.signals.get("cancelled") for c in group):
        # "… signed in 2019. Last week the new cabinet cancelled the contract.": the story tells
        # of a deal that has ended
        merged.signals["cancelled"] = 1.0
        merged.score = round(logistic_score(merged.signals, DEAL_WEIGHTS, detector.w.base, detector.w), 3)
    if merged.kind == "deal" and not (best.signals.get("counterpart", 0.0) >= strongest):
        # One sentence saying the deal is with a private firm, or at home, says it for all.
        for name in ("domestic", "private"):
            merged.signals[name] = max(float(c.signals.get(name, 0.0)) for c in group)
        if merged.signals["domestic"]:
            merged.country = None
        merged.score = round(logistic_score(merged.signals, DEAL_WEIGHTS, detector.w.base, detector.w), 3)
    return merged


def later_stage(stages: Iterable[tuple[str, bool]], first: str, order: list[str]) -> str:
    """The furthest of several sentences' stages; within a rank, the first candidate's word
    (said, not guessed), else the rules' order ("signed an MoU" is an MoU)."""
    found = [(stage, strong) for stage, strong in stages if stage != "unknown"]
    if not found:
        return "unknown"
    top = max(STAGE_RANK[stage] for stage, _ in found)
    tied = [(stage, strong) for stage, strong in found if STAGE_RANK[stage] == top]
    said = [stage for stage, strong in tied if strong] or [stage for stage, _ in tied]
    if first in said:
        return first
    return min(said, key=lambda stage: order.index(stage) if stage in order else len(order))
