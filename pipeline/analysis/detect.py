"""Deal detection: turns a tagged document into scored deal and aggregate candidates.

The spaCy component and the outline of the work. The steps live by concern, each module of
pipeline.analysis: facts (the settings, and the records of what a sentence says), reading (a tagged
doc read into them), parties and counts (who does what; many deals at once), story (what a
candidate asks of the whole story), candidates (one candidate, scored) and merge (one per deal).
"""

from __future__ import annotations

import logging
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from models.config import Grammar, Rules, WatchlistEntry
from models.records import Candidate
from pipeline.analysis.candidates import aggregate_candidate, deal_candidate, kept
from pipeline.analysis.facts import DetectorSettings, SentenceFacts
from pipeline.analysis.gazetteer import load_gazetteer
from pipeline.analysis.merge import merge_candidates

# Re-exported: the analyser marks the headline's end under this key, reading it from here.
from pipeline.analysis.reading import HEADLINE_KEY as HEADLINE_KEY
from pipeline.analysis.reading import gather_facts
from pipeline.analysis.story import Story, vendors_for

logger = logging.getLogger(__name__)

CANDIDATES_KEY = "dealwatch_candidates"  # doc.user_data key the detector component fills


@Language.factory("dealwatch_deal_detector_v1",
                  default_config={"rules": {}, "watchlist": [], "grammar": {}, "gazetteer": {}})
def make_deal_detector(nlp: Language, name: str, rules: dict[str, Any],
                       watchlist: list[dict[str, Any]], grammar: dict[str, Any],
                       gazetteer: dict[str, Any]) -> DealDetector:
    return DealDetector(DetectorSettings(Rules.model_validate(rules),
                                         [WatchlistEntry.model_validate(e) for e in watchlist],
                                         Grammar.model_validate(grammar), load_gazetteer(**gazetteer)))


class DealDetector:
    """The component: stores the doc's candidates in doc.user_data[CANDIDATES_KEY]. It reads what
    the tagger, the cue finder (pipeline.analysis.cues), the amount finder and the parser left."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[CANDIDATES_KEY] = detect_candidates(doc, self.settings)
        return doc


def detect_candidates(doc: Doc, detector: DetectorSettings) -> list[Candidate]:
    """Deal and aggregate candidates in a tagged doc: one per deal, best evidence first."""
    if not any(ent.label_ == "VENDOR" for ent in doc.ents):
        return []
    text = doc.text  # Doc.text joins every token: build it once
    facts = gather_facts(doc, text, detector)
    # What every candidate asks of the whole story, worked out once (a long article has
    # thousands of sentences): the headline's vendors when the text names none, the denials,
    # the countries it names, and the deal types the rest of the story gives each vendor and country.
    countries = frozenset(code for f in facts for code, _, _ in f.countries)
    story = Story(
        headline_vendors=None if any(f.vendors for f in facts if not f.headline) else next(
            ((j, list(dict.fromkeys(f.vendors))) for j, f in enumerate(facts)
             if f.headline and f.vendors), None),
        denied=[j for j, f in enumerate(facts) if f.denied],
        countries=countries, codes=countries | {code for f in facts for code in f.places})
    deals: list[tuple[int, Candidate]] = []
    aggregates: list[tuple[int, Candidate]] = []
    for i, fact in enumerate(facts):
        if fact.headline:
            continue  # a headline says what the story is about; its sentences give the evidence
        if fact.aggregate:
            aggregate = aggregate_candidate(text, detector, facts, i, story)
            if aggregate:
                aggregates.append((i, aggregate))
            # A sentence that counts many deals is no one deal, unless it names its own foreign
            # party (a lender at home, "financed by China Exim Bank", is no party of the deals).
            # A count that names examples in several countries ("from ECU 911 in Ecuador to
            # BOL-110 in Bolivia") names no party of its own either.
            homes = detector.home_of(fact.vendors) or detector.any_vendor_home
            if not any(cp.strength >= detector.ev.named and cp.country not in homes
                       for cp in fact.counterparts) \
                    or len({c for c, _, _ in fact.countries if c not in homes}) > 1:
                continue
        # Recall first: a sentence that names a vendor and a foreign public body or state
        # company is a candidate even with no deal word; its low score says how weak it is.
        if fact.trigger or _names_party(facts, i, detector, story):
            deal = deal_candidate(text, detector, facts, i, story)
            if deal:
                deals.append((i, deal))
    merged = merge_candidates(deals, detector) + merge_candidates(aggregates, detector)
    return sorted((c for c in merged if kept(c, detector.w.keep)), key=lambda c: (-c.score, c.start))


def _names_party(facts: list[SentenceFacts], i: int, detector: DetectorSettings, story: Story) -> bool:
    """Whether sentence i names a vendor (or follows one) and a public body of no home country."""
    vendors, _ = vendors_for(facts, i, story)
    if not vendors or not facts[i].counterparts:
        return False
    homes = detector.home_of(vendors)
    return any(cp.country not in homes for cp in facts[i].counterparts)
