"""Counts of many deals: whether a sentence tells of deals in the plural ("70 deals in 41 countries")."""

from __future__ import annotations

import math
from collections.abc import Mapping

from spacy.tokens import Doc

from pipeline.analysis.facts import DetectorSettings, SentenceFacts


def is_aggregate(doc: Doc, detector: DetectorSettings, words: Mapping[str, list[tuple[str, int]]],
                 fact: SentenceFacts, homes: set[str]) -> bool:
    """'70 deals in 41 countries', '45 safe city agreements across 30 countries', 'cameras in
    18 European countries, the review found', 'platforms used in more than 70 countries'."""

    numbers: dict[int, float] = {}  # counted noun -> its number, where it reads as one
    at: dict[int, int] = {}  # counted noun -> the token of its number

    def counted(hits: list[tuple[str, int]], reach: int) -> set[int]:
        found = set()
        for _, t in hits:
            for k in range(t - 1, max(t - reach, 0) - 1, -1):
                if doc[k].like_num or doc[k].lower_ in detector.many_words:
                    found.add(t)
                    numbers[t], at[t] = _count(doc[k].text, detector.many_words), k
                    break
                if doc[k].is_punct and doc[k].text != "-":
                    break
        return found

    # "45 Chinese-financed fibre projects", "19 Latin American and Caribbean states": the number
    # may stand a few words before the noun.
    counts = counted(list(words.get("agg_count", [])), 7)
    scopes = counted(list(words.get("agg_scope", [])), 6)
    # "56 undersea cables and over 200 data centres": counted things of a deal type; one alone
    # ("12,000 cameras") is the size of one deal, two kinds or a count "worldwide" are many deals
    typed = counted([(w, t) for cat, hits in words.items() if cat.startswith("type:")
                     for w, t in hits if _plural_phrase(w, detector)], 4)
    survey = bool(words.get("agg_survey"))
    spread = bool(words.get("agg_global"))
    if counts and scopes and (counts != scopes or len(counts) > 1):
        return True
    if (counts or scopes) and (survey or spread):
        return True
    if len(typed) > 1 or (typed and (spread or survey)):
        return True
    # "has carried out 14 government projects in Pakistan": many deals, even in one country (the
    # number right before the noun: "3,200 more cameras on highways and in municipalities" is
    # the size of one deal). A signature is one event however many papers it signs ("signed
    # seven agreements with Kenya's ministry"), and a named party's orders are its deal ("won
    # five contracts from Ethio Telecom").
    party = any(cp.strength >= detector.ev.actor and cp.country not in homes
                for cp in fact.counterparts)
    if not (party or words.get("stage:signed") or words.get("stage:mou")) and any(
            numbers[t] >= detector.rules.aggregate.many and t - at[t] <= 3 for t in counts):
        return True
    # "used by governments in more than 70 countries" counts deals of one kind without naming
    # one country; "Huawei, present in 170 countries, signed with Kenya" names its deal's.
    foreign = any(code not in homes for code, _, demonym in fact.countries if not demonym)
    national = any(doc[t].lower_ in detector.national_scopes for t in scopes)  # not "nine other cities"
    if national and not foreign and any(cat.startswith("type:") for cat in words):
        return True
    # "Governments in Africa and Asia have gone ahead with deals …": deals in the plural with
    # public bodies in the plural ("ministries", "state operators": a body's word in -s, in
    # English, Spanish, Portuguese and French alike; "officials" are people, not bodies), and
    # not one country or foreign city named, are many deals, however uncounted
    plural_party = bool(words.get("agg_scope")) or any(
        doc[t].is_alpha and doc[t].lower_.endswith("s")
        for cat, hits in words.items() if cat.startswith("cp:") and cat != "cp:government"
        for _, t in hits)
    foreign_place = any(code not in homes for code in fact.places)
    return bool(words.get("agg_count") and plural_party and not foreign and not foreign_place)


def _plural_phrase(phrase: str, detector: DetectorSettings) -> bool:
    """Whether a deal-type phrase is in the plural: by its head word, the last in English
    ("data centres"), the first where names start with their head ("centros de datos", not
    "leitura de placas")."""
    words = phrase.split()
    head = words[0] if detector.grammar.names.head_first else words[-1]
    return head.endswith("s")


def _count(text: str, many_words: frozenset[str]) -> float:
    """The number a counting word stands for: "14" and "1,200" as written, "dozens" as many,
    a number in words ("three") as a few."""
    if text.lower() in many_words:
        return math.inf
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 2.0  # "two", "three", "a dozen": spelled-out numbers are small counts here
