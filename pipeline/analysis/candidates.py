"""One candidate from a sentence and the story around it: its party, country, kind, stage, amount, score."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from models.config import Scoring
from models.records import Candidate
from pipeline.analysis.facts import Counterpart, DetectorSettings, SentenceFacts
from pipeline.analysis.parties import pick_counterpart, unlisted_party
from pipeline.analysis.story import (
    Story,
    about_another,
    lede_about,
    lede_window,
    sentence_window,
    story_deal_types,
    vendors_for,
    window_deal_types,
)

# How far a deal has got, for combining what several sentences say: the furthest stage wins, and
# a cancellation ends it. Within a rank the sentence's own words decide (an MoU is signed too).
STAGE_RANK = {"unknown": -1, "proposed": 0, "mou": 1, "awarded": 1, "signed": 1, "financed": 2,
              "under_construction": 3, "completed": 4, "cancelled": 5}


# Which Scoring weight multiplies which signal; `base` / `aggregate_base` start the sum.
DEAL_WEIGHTS: dict[str, str] = {
    "trigger": "trigger", "counterpart": "counterpart", "country": "country",
    "deal_type": "deal_type", "stage": "stage", "value": "value", "vendor_nearby": "vendor_nearby",
    "negative": "negative", "domestic": "domestic", "hedged": "hedged", "private": "private",
    "aggregate": "aggregate", "cancelled": "cancelled", "plan": "plan", "lost": "lost",
    "own_facility": "own_facility", "no_trigger": "no_trigger",
}


AGGREGATE_WEIGHTS: dict[str, str] = {
    "survey": "aggregate_survey", "deal_type": "aggregate_type",
    "counterpart": "aggregate_counterpart", "negative": "negative", "vendor_nearby": "vendor_nearby",
}


def deal_candidate(text: str, detector: DetectorSettings, facts: list[SentenceFacts], i: int,
                   story: Story) -> Candidate | None:
    """The deal of sentence i of `story` (see detect_candidates)."""
    vendors, distance = vendors_for(facts, i, story)
    if not vendors:
        return None
    fact = facts[i]
    homes = detector.home_of(vendors)
    if distance and facts[i - distance].aggregate and (not fact.trigger or len(
            {code for code, _, _ in fact.countries if code not in homes}) > 1):
        # "… 46 data centres in 29 countries, most by Huawei. Ethiopia, Kenya and Zambia host
        # two.": a sentence that goes on about an aggregate's vendors with no deal word, or
        # across several countries, is part of the count ("In Kenya, it signed a contract
        # with the ICT ministry" after the count is a deal)
        return None
    window = sentence_window(detector, facts, i)
    counterpart, weight = pick_counterpart(detector, facts, window, homes)
    country, country_from = _pick_country(facts, window, counterpart, homes, story.countries)
    if counterpart and counterpart.sentence != i and counterpart.country and country \
            and counterpart.country != country:
        counterpart = None  # the neighbour's counterpart belongs to another deal
    # At home: a home-country counterpart, or a story that names no foreign country at all but a
    # home place near the deal ("the Hangzhou public security bureau", "the Hong Kong
    # government's bureau"). A story that names a foreign country but leaves the deal's open
    # is not at home for a "loan from China".
    domestic = bool(counterpart and counterpart.country in homes) or (
        country is None and (counterpart is None or (counterpart.country is None
                                                     and counterpart.type != "intergovernmental"))
        and any(facts[j].home_mentions for j, _ in window)
        and not story.codes - homes)
    if domestic:
        country = None
    if counterpart is None:
        counterpart = unlisted_party(detector, facts, i)
    lede = lede_about(detector, facts, vendors, country, homes)
    # "… will build and equip the centre": the kind of deal may be named only in the lede
    deal_types = (window_deal_types(facts, window) or window_deal_types(facts, lede)
                  or story_deal_types(detector, facts, story, vendors, country, homes))
    stage, stage_from = _deal_stage(detector, facts, window, vendors, country)
    used = {i} | ({counterpart.sentence} if counterpart else set()) | ({i - distance} if distance else set())
    used = {j for j in used if not facts[j].headline}  # the evidence is the text's own
    start_sent, end_sent = min(used), max(used)
    value, currency = _value(detector, facts, window + lede, country)
    year = next(iter(fact.years or fact.model_years), None)
    named_party = bool(counterpart and counterpart.strength >= detector.ev.named
                       and counterpart.sentence == i
                       and not domestic)
    private = fact.private and not named_party
    signals: dict[str, Any] = {
        "trigger": fact.trigger,
        "counterpart": round(counterpart.strength * weight, 2) if counterpart else 0.0,
        "country": 1.0 if country else 0.0,
        "deal_type": 1.0 if deal_types else 0.0,
        "stage": 1.0 if stage != "unknown" else 0.0,
        "value": 1.0 if value is not None else 0.0,
        "vendor_nearby": 1.0 if distance else 0.0,
        "negative": _negative(detector, facts, window, bool(
            counterpart and counterpart.strength >= detector.ev.actor and counterpart.sentence == i
            and not domestic)),
        "domestic": 1.0 if domestic else 0.0,
        "hedged": 1.0 if fact.words.get("hedge") else 0.0,
        "private": 1.0 if private else 0.0,
        "aggregate": 1.0 if fact.aggregate else 0.0,
        "no_trigger": 0.0 if fact.trigger else 1.0,  # a vendor and a public body, no deal word
        "approval": 1.0 if fact.approval else 0.0,
        "cancelled": 1.0 if fact.cancelled else 0.0,
        "plan": 1.0 if fact.plan else 0.0,
        "lost": 1.0 if fact.lost else 0.0,
        "own_facility": 1.0 if fact.own_facility else 0.0,
    }
    # "… an adviser said no agreement had been signed": a denial anywhere in the story, about no
    # other vendor or country, weighs as a ban next door does
    if any(j != i and not about_another(facts[j], vendors, country, homes)
           for j in story.denied):
        signals["negative"] = max(signals["negative"], detector.ev.neighbour_negative)
    score = logistic_score(signals, DEAL_WEIGHTS, detector.w.base, detector.w)
    signals["evidence"] = {
        "trigger": list(dict.fromkeys(
            w for cat in ("T:verb", "T:noun", "T:weak_verb", "T:weak_noun")
            for w, _ in fact.words.get(cat, [])))[:4],
        "negative": (fact.negative + fact.weak_negative)[:4],
        "hedges": [w for w, _ in fact.words.get("hedge", [])][:4],
        "country_from": country_from,
        "stage_from": stage_from,
    }
    if domestic and counterpart:
        signals["evidence"]["home_country"] = counterpart.country
    start, end = evidence_bounds(text, facts[start_sent].span.start_char, facts[end_sent].span.end_char)
    return Candidate(
        kind="deal", vendor=vendors[0], vendors=vendors, country=country,
        counterpart=counterpart.text if counterpart else None,
        counterpart_type=counterpart.type if counterpart else None,
        deal_type=deal_types[0] if deal_types else "other", deal_types=deal_types or ["other"],
        stage=stage, value=value, currency=currency, year=year, score=round(score, 3),
        sentence=text[start:end], start=start, end=end, signals=signals)


def aggregate_candidate(text: str, detector: DetectorSettings, facts: list[SentenceFacts],
                        i: int, story: Story) -> Candidate | None:
    vendors, distance = vendors_for(facts, i, story)
    if not vendors and i + 1 < len(facts):
        vendors, distance = list(dict.fromkeys(facts[i + 1].vendors)), 1
    if not vendors:
        return None
    fact = facts[i]
    window = sentence_window(detector, facts, i)
    deal_types = window_deal_types(facts, window)
    w = detector.w
    signals: dict[str, Any] = {
        "survey": 1.0 if fact.words.get("agg_survey") else 0.0,
        "deal_type": 1.0 if deal_types else 0.0,
        "counterpart": 1.0 if any(facts[j].counterparts for j, _ in window) else 0.0,
        "negative": 1.0 if fact.negative else 0.0,
        "vendor_nearby": 1.0 if distance else 0.0,
    }
    score = logistic_score(signals, AGGREGATE_WEIGHTS, w.aggregate_base, w)
    start, end = evidence_bounds(text, fact.span.start_char, fact.span.end_char)
    return Candidate(
        kind="aggregate", vendor=vendors[0], vendors=vendors, country=None, counterpart=None,
        counterpart_type=None, deal_type=deal_types[0] if deal_types else "other",
        deal_types=deal_types or ["other"], stage="unknown", value=None, currency=None,
        year=next(iter(fact.years), None), score=round(score, 3), sentence=text[start:end],
        start=start, end=end, signals=signals)


def _negative(detector: DetectorSettings, facts: list[SentenceFacts], window: list[tuple[int, float]],
              named_party: bool) -> float:
    """How strongly the sentence and its surroundings say this is no deal (0 to 1).

    A ban, sanction or lawsuit counts fully in the sentence and half next door or in the lede.
    A product, earnings or training word counts fully too, unless the sentence names a public
    body as the other party: a deal may mention revenue or training, a phone launch names none.
    """
    fact = facts[window[0][0]]
    if fact.negative:
        return 1.0
    if fact.weak_negative:
        return detector.ev.weak_negative_with_party if named_party else 1.0
    around = [facts[j] for j, _ in window[1:] + lede_window(detector, facts) if j != window[0][0]]
    if any(f.negative for f in around):
        return detector.ev.neighbour_negative
    if not named_party and any(f.weak_negative for f in around):
        return detector.ev.neighbour_negative / 2
    return 0.0


def _pick_country(facts: list[SentenceFacts], window: list[tuple[int, float]],
                  counterpart: Counterpart | None, homes: set[str], countries: frozenset[str]
                  ) -> tuple[str | None, str]:
    """The foreign country of the deal: its counterpart's, else the nearest one named."""
    own = window[0][0]
    if (counterpart and counterpart.country and counterpart.country not in homes
            and (counterpart.sentence == own or not _foreign_in(facts[own], homes))):
        return counterpart.country, "counterpart"
    for j, _ in window:
        code = _foreign_in(facts[j], homes)
        if code:
            return code, "sentence" if j == own else "neighbour"
    foreign = set(countries - homes)
    if len(foreign) == 1:
        return foreign.pop(), "document"
    # the dateline ("NAIROBI —"), or a city in the headline above it
    for fact in facts[:next((j for j, f in enumerate(facts) if not f.headline), 0) + 1]:
        if fact.places and fact.places[0] not in homes:
            return fact.places[0], "dateline"
    return None, ""


def _foreign_in(fact: SentenceFacts, homes: set[str]) -> str | None:
    for code, _, _ in fact.countries:
        if code not in homes:
            return code
    return next((code for code in fact.places if code not in homes), None)


def _deal_stage(detector: DetectorSettings, facts: list[SentenceFacts], window: list[tuple[int, float]],
                vendors: list[str], country: str | None) -> tuple[str, str]:
    """The deal's stage: its sentence's, moved on by a neighbour about the same deal.

    "Huawei was selected under a framework agreement" (mou) after "the minister laid the
    foundation stone" is under construction. A neighbour counts when it names no other vendor
    and no other foreign country, and says its stage with a stage word.
    """
    own = facts[window[0][0]]
    stage, stage_from = own.stage, "sentence" if own.stage_strong else "guess"
    for j, _ in window[1:]:
        other = facts[j]
        # "has not said whether loans will cover it" finances nothing
        if not other.stage_strong or STAGE_RANK[other.stage] <= STAGE_RANK[stage] \
                or other.words.get("hedge"):
            continue
        if set(other.vendors) - set(vendors):
            continue
        codes = {code for code, _, _ in other.countries} | set(other.places)
        if codes - {country}:
            continue
        stage, stage_from = other.stage, "neighbour"
    return stage, stage_from


def _value(detector: DetectorSettings, facts: list[SentenceFacts], window: list[tuple[int, float]],
           country: str | None) -> tuple[float | None, str | None]:
    """The first amount in the window whose currency is known (in Kenya "Sh" is KES)."""
    for j, _ in window:
        for span in facts[j].amounts:
            value, symbol = span._.dw_amount
            code = span.label_ if span.label_ in detector.rules.currencies else None
            by_country = detector.rules.currency_by_country.get(symbol, {})
            if country and country in by_country:
                code = by_country[country]
            if code:
                return value, code
    return None, None


def evidence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Character offsets of the evidence without the whitespace around it."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def logistic_score(signals: Mapping[str, Any], weights: Mapping[str, str], base: float,
                   scoring: Scoring) -> float:
    """Logistic combination of the signals with their weights (DEAL_WEIGHTS, AGGREGATE_WEIGHTS)."""
    return _logistic(base + sum(getattr(scoring, weight) * float(signals[signal])
                                for signal, weight in weights.items()))


def kept(candidate: Candidate, keep: float) -> bool:
    """Candidates below `keep` are dropped, unless a foreign public body is their party or they
    tell of a deal that ended (the registry's record of it needs the news): those stay, however
    weak, for a reviewer to find (the queue's default view hides them)."""
    signals = candidate.signals
    return candidate.score >= keep or bool(candidate.kind == "deal" and (
        signals.get("cancelled") or (signals.get("counterpart") and not signals.get("domestic"))))
