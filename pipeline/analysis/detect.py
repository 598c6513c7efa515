"""Deal detection: turns a tagged document into scored deal and aggregate candidates."""

from __future__ import annotations

import bisect
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from models.config import Grammar, Rules, Scoring, WatchlistEntry
from models.records import Candidate
from pipeline.analysis import syntax
from pipeline.analysis.amounts import AMOUNTS_KEY, DATES_KEY, MODEL_YEAR, YEAR
from pipeline.analysis.cues import CUES_KEY, NEGATOR
from pipeline.analysis.gazetteer import POSSESSIVES, Gazetteer, load_gazetteer
from pipeline.analysis.tag import COUNTERPARTS_KEY, PLACES_KEY

logger = logging.getLogger(__name__)

CANDIDATES_KEY = "dealwatch_candidates"  # doc.user_data key the detector component fills
# doc.user_data key: the characters before it are the story's headline, context and no evidence
HEADLINE_KEY = "dealwatch_headline_end"

# How sure we are that a public body is a party, how far evidence next door carries, and every
# weight: `[scoring]` and `[scoring.evidence]` of rules.toml (detector.w, detector.ev). The
# language's function words and reaches: patterns/<lang>/grammar.toml (detector.grammar).

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


@dataclass
class Counterpart:
    text: str
    type: str
    country: str | None
    strength: float
    sentence: int
    token: int


@dataclass
class SentenceFacts:
    """What one sentence says, gathered once per document."""

    span: Span
    text: str  # the sentence's text: Span.text joins its tokens anew at every call
    vendors: list[str] = field(default_factory=list)
    countries: list[tuple[str, int, bool]] = field(default_factory=list)  # code, token, demonym
    places: list[str] = field(default_factory=list)  # country codes of cities in the sentence
    home_mentions: int = 0  # places in a vendor's home country, not said of the vendor
    counterparts: list[Counterpart] = field(default_factory=list)
    words: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    trigger: float = 0.0
    private: bool = False
    negative: list[str] = field(default_factory=list)
    weak_negative: list[str] = field(default_factory=list)
    stage: str = "unknown"
    stage_strong: bool = False  # said by a stage word, not guessed from "contract"
    aggregate: bool = False
    other_company: bool = False  # names a private company (watchlist private: true)
    orgs: list[tuple[str, int]] = field(default_factory=list)  # the model's ORG names, no list
    years: list[int] = field(default_factory=list)  # the years its words date it to
    model_years: list[int] = field(default_factory=list)  # years in the model's DATE entities
    amounts: list[Span] = field(default_factory=list)  # doc.spans[AMOUNTS_KEY] in the sentence
    negators: list[int] = field(default_factory=list)  # tokens of "not", "no", "without" …
    vendor_at: list[tuple[str, int]] = field(default_factory=list)  # vendor id, first token
    approval: bool = False  # a public body let the vendor do the work ("gave the nod to")
    cancelled: bool = False  # a deal ended ("cancelled the agreement")
    plan: bool = False  # the vendor's hopes and plans ("Huawei aims to win")
    lost: bool = False  # the vendor named lost the bid ("Huawei lost out to Ericsson")
    own_facility: bool = False  # the vendor opens its own site ("opened its first data centre")
    headline: bool = False  # the story's headline: context for the deals below it, none itself
    denied: bool = False  # says a deal was not made ("No agreement has been signed")


class _Mentions:
    """Where a doc names watchlist vendors, as token arrays: an article may name hundreds."""

    def __init__(self, n: int) -> None:
        self.inside = bytearray(n)
        self.starts = bytearray(n + 1)  # 1 at the first token of a name
        self.ends = bytearray(n + 1)  # 1 at the token after a name

    def add(self, start: int, end: int) -> None:
        self.inside[start:end] = b"\1" * (end - start)
        self.starts[start] = self.ends[end] = 1

    def said_of(self, doc: Doc, t: int, detector: DealDetector) -> bool:
        """'China's ZTE', 'China Mobile', 'China's technology giant, Huawei', 'Chinese
        state-owned company ZTE': a home country said of the vendor, not of the deal.

        Between the country and the name stand only words that describe a company (from the
        rules' `vendor_descriptors` and `anaphora`), possessives, hyphens, commas and articles.
        """
        if self.inside[t]:
            return True
        for k in range(t + 1, min(t + 1 + detector.grammar.reach.description, len(doc))):
            if self.starts[k]:
                return True
            if not (detector.describes(doc[k]) or doc[k].is_digit):
                return False
        return False


# --- the component --------------------------------------------------------------------------


@Language.factory("dealwatch_deal_detector_v1",
                  default_config={"rules": {}, "watchlist": [], "grammar": {}, "gazetteer": {}})
def make_deal_detector(nlp: Language, name: str, rules: dict[str, Any],
                       watchlist: list[dict[str, Any]], grammar: dict[str, Any],
                       gazetteer: dict[str, Any]) -> DealDetector:
    return DealDetector(Rules.model_validate(rules),
                        [WatchlistEntry.model_validate(e) for e in watchlist],
                        Grammar.model_validate(grammar), load_gazetteer(**gazetteer))


class DealDetector:
    """Holds the rules, the language's grammar and their word sets; calling it stores
    candidates in doc.user_data (the cues it reads are pipeline.analysis.cues')."""

    def __init__(self, rules: Rules, watchlist: Sequence[WatchlistEntry],
                 grammar: Grammar, gazetteer: Gazetteer | None = None) -> None:
        self.rules = rules
        self.grammar = grammar
        self.gazetteer: Gazetteer = gazetteer or load_gazetteer()
        self.watch = {e.id: e for e in watchlist}
        self.stage_order: list[str] = [str(stage) for stage in rules.stages]
        self.weak_stage_order: list[str] = [str(stage) for stage in rules.weak_stages]
        self.home_regions: dict[str, set[str]] = {
            home: {home, *extra} for home, extra in rules.domestic_territories.items()}
        # where a sentence that names no vendor counts as at home
        self.any_vendor_home = self.home_of(e.id for e in watchlist if e.type == "vendor")
        self.descriptors = frozenset(w.lower() for w in (*rules.vendor_descriptors, *rules.anaphora))
        # Words between "with" and a place: "with the province of Mendoza", "with the city of Kano".
        cp = rules.counterparts
        words = grammar.words
        self.place_lead = frozenset((*words.place_lead, *cp.subdivision_nouns,
                                     *cp.subdivision_cues.before, *cp.modifiers.get("subnational", [])))
        self.auxiliaries = frozenset(words.auxiliaries)
        self.party_breaks = frozenset(words.party_breaks)
        self.comparison_fillers = frozenset(words.comparison_fillers)
        self.description_fillers = frozenset(words.description_fillers)
        self.national_scopes = frozenset(words.national_scopes)
        self.many_words = frozenset(words.many)
        self.first_person = frozenset(words.first_person)
        self.indefinite = frozenset(words.indefinite)
        self.negation_fillers = frozenset((*words.auxiliaries, *words.negation_fillers))
        self.w = rules.scoring
        self.ev = rules.scoring.evidence

    def describes(self, token: Token) -> bool:
        """Whether a word may stand in a description of a company, between a name and what it
        describes ("China's technology giant, Huawei"): a word of the rules'
        `vendor_descriptors` or `anaphora`, a possessive, or a hyphen, comma or article."""
        return (token.lower_ in self.descriptors or token.text in POSSESSIVES
                or token.text in self.description_fillers)

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[CANDIDATES_KEY] = detect_candidates(doc, self)
        return doc

    def home_of(self, vendor_ids: Iterable[str]) -> set[str]:
        homes: set[str] = set()
        for vid in vendor_ids:
            entry = self.watch.get(vid)
            if entry and entry.country:
                homes |= self.home_regions.get(entry.country, {entry.country})
        return homes


# --- detection ------------------------------------------------------------------------------


def detect_candidates(doc: Doc, detector: DealDetector) -> list[Candidate]:
    """Deal and aggregate candidates in a tagged doc: one per deal, best evidence first."""
    if not any(ent.label_ == "VENDOR" for ent in doc.ents):
        return []
    text = doc.text  # Doc.text joins every token: build it once
    facts = _gather(doc, text, detector)
    # What every candidate asks of the whole story, worked out once (a long article has
    # thousands of sentences): the headline's vendors when the text names none, the denials,
    # the countries it names, and the sentences about each vendor and country (_about).
    countries = frozenset(code for f in facts for code, _, _ in f.countries)
    story = _Story(
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
            aggregate = _aggregate_candidate(text, detector, facts, i, story)
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
            deal = _deal_candidate(text, detector, facts, i, story)
            if deal:
                deals.append((i, deal))
    merged = _merge(deals, detector) + _merge(aggregates, detector)
    return sorted((c for c in merged if _kept(c, detector.w.keep)), key=lambda c: (-c.score, c.start))


def _names_party(facts: list[SentenceFacts], i: int, detector: DealDetector, story: _Story) -> bool:
    """Whether sentence i names a vendor (or follows one) and a public body of no home country."""
    vendors, _ = _vendors_for(facts, i, story)
    if not vendors or not facts[i].counterparts:
        return False
    homes = detector.home_of(vendors)
    return any(cp.country not in homes for cp in facts[i].counterparts)


def _kept(candidate: Candidate, keep: float) -> bool:
    """Candidates below `keep` are dropped, unless a foreign public body is their party or they
    tell of a deal that ended (the registry's record of it needs the news): those stay, however
    weak, for a reviewer to find (the queue's default view hides them)."""
    signals = candidate.signals
    return candidate.score >= keep or bool(candidate.kind == "deal" and (
        signals.get("cancelled") or (signals.get("counterpart") and not signals.get("domestic"))))


def _gather(doc: Doc, text: str, detector: DealDetector) -> list[SentenceFacts]:
    sents = list(doc.sents)
    headline_end = doc.user_data.get(HEADLINE_KEY, 0)
    facts = [SentenceFacts(span=s, text=text[s.start_char:s.end_char],
                           headline=s.end_char <= headline_end) for s in sents]
    sent_of = [0] * len(doc)
    for i, sent in enumerate(sents):
        sent_of[sent.start:sent.end] = [i] * (sent.end - sent.start)
    gaz = detector.gazetteer
    matches = [(cue.label_, cue.start, cue.end) for cue in doc.spans.get(CUES_KEY, [])]
    non_party_ends = {end for category, _, end in matches if category in ("non_party", "compare")}
    vendor_names = _Mentions(len(doc))
    covered = [False] * len(doc)  # tokens inside a counterpart name: its words are not re-read
    named = [False] * len(doc)  # tokens of a watchlist name ("Galaxy Backbone", "Huawei Cloud")
    for ent in doc.ents:
        fact = facts[sent_of[ent.start]]
        if ent.label_ == "VENDOR" and ent.ent_id_:
            # "Huawei Cloud" is no cloud deal and "Huawei Technologies Co Ltd" no private firm
            named[ent.start:ent.end] = [True] * len(ent)
            vendor_names.add(ent.start, ent.end)
            if not _compared(doc, detector, ent.start, non_party_ends, ent.end):
                fact.vendors.append(ent.ent_id_)
                fact.vendor_at.append((ent.ent_id_, ent.start))
        elif ent.label_ == "COUNTRY" and ent.ent_id_:
            fact.countries.append((ent.ent_id_, ent.start, gaz.is_demonym(ent.text)))
        elif ent.label_ == "ORG" and not ent.ent_id_:
            fact.orgs.append((ent.text, ent.start))
        entry = detector.watch.get(ent.ent_id_) if ent.ent_id_ else None
        if entry and entry.type != "vendor":
            covered[ent.start:ent.end] = named[ent.start:ent.end] = [True] * len(ent)
            if entry.counterpart_type:
                fact.counterparts.append(Counterpart(ent.text, entry.counterpart_type, entry.country,
                                                     detector.ev.named, sent_of[ent.start],
                                                     ent.start))
            elif entry.private:
                fact.private = fact.other_company = True
    for span in doc.spans.get(COUNTERPARTS_KEY, []):
        covered[span.start:span.end] = [True] * len(span)
        facts[sent_of[span.start]].orgs = [o for o in facts[sent_of[span.start]].orgs
                                           if not span.start <= o[1] < span.end]
        facts[sent_of[span.start]].counterparts.append(Counterpart(
            span.text, span.label_, span.kb_id_ or None, detector.ev.named, sent_of[span.start],
            span.start))
    places: list[dict[int, tuple[str, str]]] = [{} for _ in facts]  # per sentence, by token
    for span in doc.spans.get(PLACES_KEY, []):
        if span.kb_id_:
            places[sent_of[span.start]][span.start] = (span.label_, span.kb_id_)
            if span.label_ == "city":
                facts[sent_of[span.start]].places.append(span.kb_id_)
    # "government cloud", "licence plate recognition": a word of a deal type's name is neither
    # a party nor a sign of something else
    in_type = [False] * len(doc)
    for category, start, end in matches:
        if category.startswith("type:"):
            in_type[start:end] = [True] * (end - start)
    for category, start, end in matches:
        if category == NEGATOR:
            facts[sent_of[start]].negators.append(start)
            continue
        if category.startswith(("cp:", "neg", "weak_neg")) and all(in_type[start:end]):
            continue
        # Words inside names say nothing about the deal: "Ministry of Finance" finances nothing
        # and "Galaxy Backbone" is no fibre; a deal type in a public body's name still counts.
        if any(named[start:end]) or (any(covered[start:end]) and not category.startswith(
                ("type:", "cp:"))):
            continue
        # "e-government", "government-to-government": a word in a compound names no party
        if category.startswith("cp:") and _in_compound(doc, start, end):
            continue
        facts[sent_of[start]].words[category].append((doc[start:end].text, start))
    for span in doc.spans.get(AMOUNTS_KEY, []):
        facts[sent_of[span.start]].amounts.append(span)
    for span in doc.spans.get(DATES_KEY, []):
        fact = facts[sent_of[span.start]]
        if span.label_ == YEAR:
            fact.years.append(span._.dw_year)
        elif span.label_ == MODEL_YEAR and span.end <= fact.span.end:
            fact.model_years.append(span._.dw_year)
    for i, fact in enumerate(facts):
        _read_sentence(doc, detector, fact, i, vendor_names, covered, places[i])
    return facts


def _compared(doc: Doc, detector: DealDetector, start: int, non_party_ends: set[int],
              end: int | None = None) -> bool:
    """Whether a vendor mention follows 'over', 'rather than' …: compared, not a party.
    Where the sentence was parsed, the parse decides ("chose Nokia's bid over the one from
    Huawei": Huawei is still the object of "over")."""
    if end is not None and syntax.is_parsed(doc[start]):
        return syntax.compared(doc, start, end) or (start > 0 and start in non_party_ends
                                                    and doc[start - 1].lower_
                                                    not in detector.grammar.words.conjunctions)
    k = start
    while k > 0 and start - k < 3 and doc[k - 1].lower_ in detector.comparison_fillers:
        k -= 1
    return k in non_party_ends


def _in_compound(doc: Doc, start: int, end: int) -> bool:
    """Whether the words are glued to a hyphen ("e-government", "government-backed")."""
    before = start > 0 and doc[start - 1].text == "-" and not doc[start - 1].whitespace_
    after = end < len(doc) and doc[end].text == "-" and not doc[end - 1].whitespace_
    return before or after


def _read_sentence(doc: Doc, detector: DealDetector, fact: SentenceFacts, index: int,
                   vendor_names: _Mentions, covered: list[bool],
                   sent_places: Mapping[int, tuple[str, str]]) -> None:
    words = fact.words
    sent = fact.span
    background = _background_tokens(doc, sent, words.get("concessive", []))
    fact.countries = [c for c in fact.countries if c[1] not in background]
    # "in the presence of the minister", "despite the ministry's doubts": named bodies in the
    # background watched or objected; they are no parties
    fact.counterparts = [cp for cp in fact.counterparts if cp.token not in background]
    # "While critics ask whether the centre was needed, the ministry signed …": a doubt in the
    # background is not a doubt about the deal
    if background and words.get("hedge"):
        words["hedge"] = [(w, t) for w, t in words["hedge"] if t not in background]
    negated = _negated_tokens(doc, sent, fact.negators, detector.grammar.reach.negation)
    # "No agreement was signed.", "has not yet signed any contract": the sentence says the deal
    # did not happen (the negator right before the deal word), and says it of the sentences
    # around it too, as a neighbour's negative ("MPs have never seen the contract" says nothing)
    denied = any(n < t and all(doc[j].lower_ in detector.negation_fillers for j in range(n + 1, t))
                 for cat, hits in words.items() if cat.startswith("T:") for _, t in hits
                 for n in fact.negators)
    for category in list(words):  # "did not announce any agreement" announces none
        if category.startswith(("T:", "stage:", "weak_stage:")):
            words[category] = [(w, t) for w, t in words[category] if t not in negated]
    # ... unless a deal verb still stands ("the tender in which it bid" is no deal made)
    denied = denied and not words.get("T:verb")
    fact.denied = denied
    cue = {name: [t for _, t in words.get(name, []) if t not in background and t not in negated]
           for name in ("approval", "cancel", "plan", "lose", "own_facility", "removal")}
    party_words = sorted(t for cat, hits in words.items() if cat.startswith("cp:") for _, t in hits)
    # "… and will not use Huawei", "a network without Huawei": a vendor right after a negator
    # (at most two words between) is left out, as one that lost the bid is
    # ("not only Huawei but also ZTE" adds, it refuses no one)
    refused = [k for _, k in fact.vendor_at
               if any(0 < k - n <= 3 and all(not doc[j].is_punct for j in range(n + 1, k))
                      and doc[n + 1].lower_ not in detector.grammar.words.additive
                      for n in fact.negators)]
    if refused:
        fact.lost = True
        fact.vendor_at = [(v, k) for v, k in fact.vendor_at if k not in refused]
        fact.vendors = [v for v, _ in fact.vendor_at]
    for t in cue["lose"]:  # "Huawei lost out to Ericsson": the loser is no party
        loser = _subject_vendor(doc, detector, fact, t, party_words)
        if loser is None:  # "rejected Huawei's appeal", "rechazó el recurso de Huawei"
            loser = _object_vendor(doc, detector, fact, t, party_words)
        if loser is not None:
            fact.lost = True
            fact.vendor_at = [(v, k) for v, k in fact.vendor_at if k != loser]
            fact.vendors = [v for v, _ in fact.vendor_at]
    fact.approval = bool(cue["approval"])
    deal_words = {t for cat in ("T:noun", "T:weak_noun") for _, t in words.get(cat, [])}
    vendor_tokens = {j for _, k in fact.vendor_at for j in range(k, _mention_end(doc, k))}
    fact.cancelled = any(_cancels_a_deal(doc, t, deal_words, vendor_tokens) for t in cue["cancel"])
    # "signed an MoU, aiming to …" states the deal's purpose: a plan counts before the deal verb
    deeds = sorted(party_words + [t for cat in ("T:verb", "approval") for _, t in words.get(cat, [])])
    fact.plan = any(_subject_vendor(doc, detector, fact, t, deeds) is not None
                    or _first_person(doc, detector, t) for t in cue["plan"])
    fact.own_facility = any(_subject_vendor(doc, detector, fact, t, party_words) is not None
                            for t in cue["own_facility"])
    strong = words.get("T:verb", []) + words.get("T:noun", []) + words.get("approval", [])
    weak = words.get("T:weak_verb", []) + words.get("T:weak_noun", [])
    fact.trigger = 1.0 if strong else 0.5 if weak else 0.0
    fact.negative = [w for w, t in words.get("neg", []) + words.get("removal", []) if t not in background]
    if denied:
        fact.negative.append("no deal made")
    fact.weak_negative = [w for w, t in words.get("weak_neg", []) if t not in background]
    if fact.own_facility:
        fact.weak_negative.append("its own site")
    fact.stage, fact.stage_strong = _sentence_stage(detector, words)
    if fact.cancelled:  # "tore up the contract": a cancel word that ends a deal says its stage
        fact.stage, fact.stage_strong = "cancelled", True
    elif fact.stage == "cancelled" and cue["cancel"]:
        # the parse says the cancel word ends no deal ("suspended two officials")
        fact.stage, fact.stage_strong = _sentence_stage(
            detector, {k: v for k, v in words.items() if k != "stage:cancelled"})
    if fact.stage == "unknown" and fact.approval:
        fact.stage = "awarded"  # "gave the nod to Hikvision to mount cameras"
    if fact.plan and fact.stage not in ("unknown", "cancelled"):
        # "our ambition is to sign …": what a plan would sign is proposed, not signed
        fact.stage, fact.stage_strong = "proposed", False
    homes = detector.home_of(fact.vendors) or detector.any_vendor_home

    def describes_vendor(t: int, text: str) -> bool:
        # "a Chinese state-owned company ZTE", "state-run China Telecom": about the vendor, when
        # only words that describe a company stand between ("the president inaugurated the
        # Huawei-built centre" is the president's doing)
        end_char = doc[t].idx + len(text)
        for k in range(t + 1, min(t + 5, len(doc))):
            if vendor_names.starts[k]:
                return True
            token = doc[k]
            if token.idx >= end_char and not (  # past the word itself
                    detector.describes(token) or token.ent_type_ == "COUNTRY"):
                break
        # "China Telecom, the state-run carrier", "ZTE, which is partly state-owned": after the
        # vendor only a description ("Huawei executives met the president" is another party)
        for end in range(t, max(t - 6, 0) - 1, -1):
            if vendor_names.ends[end]:
                return not _crosses_clause(doc, detector, end, t)
            token = doc[end]
            if end < t and not (detector.describes(token) or token.ent_type_ == "COUNTRY"
                                or token.is_stop or token.lower_.endswith("ly")):
                break
        return any(0 < t - c <= 3 and code in homes for code, c, _ in fact.countries)

    anaphora = {t for _, t in words.get("anaphor", [])}
    for ctype in ("government", "ministry", "agency", "soe", "subnational", "intergovernmental"):
        for text, t in words.get(f"cp:{ctype}", []):
            if covered[t] or describes_vendor(t, text) or t in background or t in negated \
                    or _company_officer(doc, detector, t, anaphora, vendor_names):
                continue  # "Harbourline is not state-owned" names no state company
            if t > 0 and doc[t - 1].lower_ in detector.indefinite:
                continue  # "sign with some municipalities", "des communes": a market, no party
            country = _near_country(fact, t) or _near_place(sent_places, t)
            fact.counterparts.append(Counterpart(text, ctype, country, detector.ev.word, index, t))
    if any(not covered[t] and not describes_vendor(t, w) for w, t in words.get("private", [])):
        fact.private = True
    verbs = {t for _, t in words.get("T:verb", []) + words.get("T:weak_verb", [])}
    nouns = {t for _, t in words.get("T:noun", [])}
    for code, t, demonym in fact.countries:
        said_of_vendor = vendor_names.said_of(doc, t, detector)
        if code in homes and not demonym and not said_of_vendor:
            fact.home_mentions += 1  # "the Hong Kong government", "in Shenzhen"
        if demonym or code in homes or t in background:
            continue
        if _is_actor(doc, detector, sent, t, verbs, nouns, vendor_names):
            fact.counterparts.append(Counterpart(_entity_text(doc, t), "government", code,
                                                 detector.ev.actor, index, t))
    for t, (kind, code) in sent_places.items():
        # "Zhejiang Dahua", "the Tianjin-based company": the vendor's home, not the deal's place
        if code in homes and t not in background and not vendor_names.said_of(doc, t, detector) \
                and not _in_compound(doc, t, t + 1):
            fact.home_mentions += 1
        if fact.trigger and _is_actor(doc, detector, sent, t, verbs, nouns):
            ctype = "subnational" if kind == "subdivision" else "government"
            fact.counterparts.append(Counterpart(doc[t].text, ctype, code, detector.ev.actor, index, t))
    fact.aggregate = _is_aggregate(doc, detector, words, fact, homes)


def _subject_vendor(doc: Doc, detector: DealDetector, fact: SentenceFacts, t: int,
                    party_words: list[int]) -> int | None:
    """The first token of the vendor that is the subject of the cue at token t, if one is:
    the nearest vendor named before it in the same clause, with no public body between
    ("Huawei, which built the network, now hopes to win" — not "the ministry, Huawei said,
    plans to"). Without the parser this is the rule path's reading of who does what."""
    if syntax.is_parsed(doc[t]):
        verb = syntax.governing_verb(doc, t)
        if verb is None:
            return None
        subjects = syntax.subjects(doc, verb)
        return next((k for _, k in fact.vendor_at
                     if any(j in subjects for j in range(k, _mention_end(doc, k)))), None)
    before = [k for _, k in fact.vendor_at if k < t and t - k <= detector.grammar.reach.subject]
    if not before:
        return None
    k = max(before)
    if any(k < p < t for p in party_words) or any(doc[j].text in (";", ":") for j in range(k, t)):
        return None
    return k


def _first_person(doc: Doc, detector: DealDetector, t: int) -> bool:
    """A plan said in the first person, in a quote of the company ("Our ambition is to sign our
    first projects with towns"): the speaker's hope, whoever the speaker is named as."""
    return any(doc[k].lower_ in detector.first_person for k in range(max(t - 2, 0), t + 1))


def _object_vendor(doc: Doc, detector: DealDetector, fact: SentenceFacts, t: int,
                   party_words: list[int]) -> int | None:
    """The first token of the vendor a few words after the cue at token t, with no public body
    and no clause break between: what a rejection or a loss is said of when the vendor follows
    it ("dismissed the objection filed by Huawei")."""
    reach = detector.grammar.reach.trigger
    after = [k for _, k in fact.vendor_at if 0 < k - t <= reach]
    if not after:
        return None
    k = min(after)
    if any(t < p < k for p in party_words) or any(doc[j].text in (";", ".", ",")
                                                   for j in range(t + 1, k)):
        return None
    return k


def _mention_end(doc: Doc, start: int) -> int:
    """The token after the entity that starts at `start`."""
    end = start + 1
    while end < len(doc) and doc[end].ent_iob_ == "I":
        end += 1
    return end


def _cancels_a_deal(doc: Doc, t: int, deal_words: set[int], vendor_tokens: set[int]) -> bool:
    """'The ministry cancelled the agreement', 'the contract with ZTE was terminated': a
    cancellation whose object is a deal or the vendor. Without a parse every cancel word counts;
    with one, "suspended two officials" or "halted imports of phones" cancel no deal."""
    if not syntax.is_parsed(doc[t]) or not (doc[t]._.dw_tag or "").startswith("VB"):
        return True
    sent = doc[t].sent
    governed = {k for k in range(sent.start, sent.end) if syntax.head(doc, k) == t
                and doc[k]._.dw_dep in ("dobj", "nsubjpass", "prep", "prt", "attr")}
    # one step down through a preposition or particle: "pulled out of the deal"
    governed |= {k for k in range(sent.start, sent.end) if syntax.head(doc, k) in governed
                 and doc[k]._.dw_dep in ("pobj", "dobj")}
    targets = deal_words | vendor_tokens
    return any(k in targets or any(syntax.head(doc, j) == k and j in targets
                                   for j in range(sent.start, sent.end)) for k in governed)


def _sentence_stage(detector: DealDetector, words: Mapping[str, list[tuple[str, int]]]
                    ) -> tuple[str, bool]:
    """The sentence's stage: the first listed stage it names, else one its nouns suggest."""
    for stage in detector.stage_order:
        if words.get(f"stage:{stage}"):
            return stage, True
    for stage in detector.weak_stage_order:
        if words.get(f"weak_stage:{stage}"):
            return stage, False
    return "unknown", False


def _company_officer(doc: Doc, detector: DealDetector, t: int, anaphora: set[int],
                     vendor_names: _Mentions) -> bool:
    """'the company's regional president', 'its managing director', 'president of Huawei Cloud
    for Africa': people of a company."""
    after = t + 1
    if after < len(doc) and doc[after].lower_ in detector.grammar.words.officer_prepositions:
        after += 1 + (after + 1 < len(doc) and doc[after + 1].lower_ in detector.description_fillers)
        if after < len(doc) and (vendor_names.starts[after] or after in anaphora):
            return True
    for k in range(t - 1, max(t - 4, -1), -1):
        token = doc[k]
        if token.is_punct and token.text not in POSSESSIVES:
            return False
        if token.lower_ in detector.grammar.words.company_possessives or (
                token.text in POSSESSIVES and k > 0 and (k - 1 in anaphora or vendor_names.ends[k])):
            return True
    return False


def _near_place(places: Mapping[int, tuple[str, str]], t: int) -> str | None:
    # "the Hangzhou public security bureau": a city or province right before the word
    return next((code for p, (_, code) in places.items() if 0 < t - p <= 3), None)


def _negated_tokens(doc: Doc, sent: Span, negators: list[int], reach: int) -> set[int]:
    """Tokens a few words after 'not', 'no', 'without', up to the next punctuation."""
    negated: set[int] = set()
    for t in negators:
        k = t + 1
        while k < min(t + 1 + reach, sent.end) and not doc[k].is_punct:
            negated.add(k)
            k += 1
    return negated


def _background_tokens(doc: Doc, sent: Span, concessives: list[tuple[str, int]]) -> set[int]:
    """Tokens from 'despite' / 'amid' to the next comma: background to the news."""
    tokens: set[int] = set()
    for _, start in concessives:
        t = start
        while t < sent.end and doc[t].text not in (",", ";", "—", "–"):
            tokens.add(t)
            t += 1
    return tokens


def _crosses_clause(doc: Doc, detector: DealDetector, start: int, end: int) -> bool:
    """Whether a word between start and end separates two parties ("the authorities and Huawei")."""
    return any(doc[t].text in (";", ".") or doc[t].lower_ in detector.party_breaks
               for t in range(start, end))


def _near_country(fact: SentenceFacts, t: int) -> str | None:
    # "the Kenyan police", "Uganda's government": a country right before the word is its own.
    for code, c, _ in fact.countries:
        if 0 < t - c <= 3:
            return code
    return None


def _entity_text(doc: Doc, t: int) -> str:
    """The whole entity that starts at token t ("Saudi Arabia", not "Saudi")."""
    return doc[t:_mention_end(doc, t)].text


def _past_conjoined_vendor(doc: Doc, detector: DealDetector, sent: Span, t: int,
                           vendor_names: _Mentions) -> int:
    """Where the verb of a party at token t may stand when the vendor is its co-subject.

    "Saudi Arabia and China's Huawei recently signed": after "and" and a described vendor the
    verb belongs to both, so the country signs too. Otherwise t itself.
    """
    if t >= sent.end or doc[t].lower_ not in detector.grammar.words.subject_conjunctions:
        return t
    k = t + 1
    while k < sent.end and k - t <= detector.grammar.reach.description:
        if vendor_names.starts[k]:
            while k < sent.end and vendor_names.inside[k]:
                k += 1
            return k
        if not (detector.describes(doc[k]) or doc[k].ent_type_ == "COUNTRY"):
            return t
        k += 1
    return t


def _is_actor(doc: Doc, detector: DealDetector, sent: Span, t: int, verbs: set[int],
              nouns: set[int], vendor_names: _Mentions | None = None) -> bool:
    """A country that does the deal: 'Ethiopia has signed', 'Kenya's $48m deal', 'with Egypt',
    'Oman and China's Huawei signed'."""
    end = t + 1
    while end < sent.end and doc[end].ent_iob_ == "I" and doc[end].ent_type_ == doc[t].ent_type_:
        end += 1
    if end < sent.end and doc[end].text in POSSESSIVES:
        return any(n in nouns for n in range(end + 1, min(end + 5, sent.end)))
    if syntax.is_parsed(doc[t]):
        # the country, or a conjunct of it ("Oman and Huawei signed"), is the deal verb's subject
        root = syntax.name_root(doc, t, end)
        for k in {root} | syntax.conjuncts(doc, root):
            if doc[k]._.dw_dep in syntax.SUBJECTS and syntax.head(doc, k) in verbs:
                return True
            if doc[k]._.dw_dep == "conj" and doc[syntax.head(doc, k)]._.dw_dep in syntax.SUBJECTS \
                    and syntax.head(doc, syntax.head(doc, k)) in verbs:
                return True
    j = _past_conjoined_vendor(doc, detector, sent, end, vendor_names) if vendor_names else end
    start = j
    while j < sent.end and j - start < 4 and doc[j].lower_ in detector.auxiliaries:
        j += 1
    if j in verbs:
        return True
    # "a contract with Egypt", "signed with the province of Mendoza": a party when a deal word
    # comes shortly before "with" ("the borders with Niger" are no party)
    before = t - 1
    while before > sent.start and doc[before].lower_ in detector.place_lead:
        before -= 1
    if before >= sent.start and doc[before].lower_ in detector.grammar.words.party_prepositions:
        return any(before - detector.grammar.reach.trigger <= k < before for k in verbs | nouns)
    return False


def _is_aggregate(doc: Doc, detector: DealDetector, words: Mapping[str, list[tuple[str, int]]],
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


def _plural_phrase(phrase: str, detector: DealDetector) -> bool:
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


def _window(detector: DealDetector, facts: list[SentenceFacts], i: int) -> list[tuple[int, float]]:
    """The sentence itself, then its neighbours, with the weight of evidence found there."""
    out = [(i, 1.0)]
    if i > 0:
        out.append((i - 1, detector.ev.neighbour))
    if i + 1 < len(facts):
        out.append((i + 1, detector.ev.neighbour))
    return out


def _lede(detector: DealDetector, facts: list[SentenceFacts]) -> list[tuple[int, float]]:
    """The headline and first sentence: when they report a ban or a lawsuit, so does the story."""
    ev = detector.ev
    return [(j, ev.neighbour) for j in range(min(ev.lede_sentences, len(facts)))]


def _lede_about(detector: DealDetector, facts: list[SentenceFacts], vendors: list[str], country: str | None,
                homes: set[str]) -> list[tuple[int, float]]:
    """Lede sentences that may be about this deal: no other vendor, no other foreign country
    (the vendor's home is no other deal's: "China gains clout in Ecuador through …").

    "Malawi broke ground on a US$75 million data centre …" comes two sentences before "Huawei
    was selected for the project": the lede states the amount the later sentences leave out.
    """
    return [(j, weight) for j, weight in _lede(detector, facts)
            if not _about_another(facts[j], vendors, country, homes)]


def _about_another(fact: SentenceFacts, vendors: list[str], country: str | None,
                   homes: set[str]) -> bool:
    """Whether a sentence names another vendor or another foreign country than this deal's."""
    codes = {code for code, _, _ in fact.countries} | set(fact.places)
    return bool(set(fact.vendors) - set(vendors) or codes - {country} - homes)


@dataclass
class _Story:
    """What the candidates of one document ask of the whole story (see detect_candidates)."""

    headline_vendors: tuple[int, list[str]] | None  # (headline index, vendors) if the text names none
    denied: list[int]  # sentences that say a deal was not made
    countries: frozenset[str]  # the countries the story names
    codes: frozenset[str]  # those and the countries of its places
    # _about's deal types, by vendors and country
    about: dict[tuple[tuple[str, ...], str | None], list[str]] = field(default_factory=dict)


def _about_cached(detector: DealDetector, facts: list[SentenceFacts], story: _Story,
                  vendors: list[str], country: str | None, homes: set[str]) -> list[str]:
    """The deal types the rest of the story gives this vendor and country (worked out once per
    vendor and country: every sentence of a long story may ask; `homes` are the vendors')."""
    key = (tuple(vendors), country)
    if key not in story.about:
        story.about[key] = _deal_types(facts, _about(detector, facts, vendors, country, homes))
    return story.about[key]


def _about(detector: DealDetector, facts: list[SentenceFacts], vendors: list[str], country: str | None,
           homes: set[str]) -> list[tuple[int, float]]:
    """Sentences anywhere in the story about this deal: they name its vendor or its country,
    and no other vendor or foreign country ("The 5,457 km cable will link 14 coastal towns" two
    sentences before "Huawei and the government signed the contract")."""
    out = []
    for j, fact in enumerate(facts):
        if _about_another(fact, vendors, country, homes):
            continue
        codes = {code for code, _, _ in fact.countries} | set(fact.places)
        if set(fact.vendors) & set(vendors) or (country and country in codes):
            out.append((j, detector.ev.neighbour))
    return out


def _vendors_for(facts: list[SentenceFacts], i: int, story: _Story) -> tuple[list[str], int]:
    """Vendors of sentence i, else of the one before ('The two firms signed …'), with distance."""
    if facts[i].vendors:
        return list(dict.fromkeys(facts[i].vendors)), 0
    # A sentence that names another company is about that company, not the vendor before it.
    if i > 0 and facts[i - 1].vendors and (not facts[i].other_company or facts[i].words.get("anaphor")):
        return list(dict.fromkeys(facts[i - 1].vendors)), 1
    if i > 1 and facts[i - 2].vendors and facts[i].words.get("anaphor"):
        return list(dict.fromkeys(facts[i - 2].vendors)), 2
    # A story whose text names no vendor is about the one its headline names ("Huawei project
    # hits snag" over "The deal calls for 12,000 cameras …").
    if story.headline_vendors is not None:
        j, vendors = story.headline_vendors
        return list(vendors), i - j
    return [], 0


def _deal_candidate(text: str, detector: DealDetector, facts: list[SentenceFacts], i: int,
                    story: _Story) -> Candidate | None:
    """The deal of sentence i of `story` (see detect_candidates)."""
    vendors, distance = _vendors_for(facts, i, story)
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
    window = _window(detector, facts, i)
    counterpart, weight = _pick_counterpart(detector, facts, window, homes)
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
        counterpart = _unlisted_party(detector, facts, i)
    lede = _lede_about(detector, facts, vendors, country, homes)
    # "… will build and equip the centre": the kind of deal may be named only in the lede
    deal_types = (_deal_types(facts, window) or _deal_types(facts, lede)
                  or _about_cached(detector, facts, story, vendors, country, homes))
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
    if any(j != i and not _about_another(facts[j], vendors, country, homes)
           for j in story.denied):
        signals["negative"] = max(signals["negative"], detector.ev.neighbour_negative)
    score = _score(signals, DEAL_WEIGHTS, detector.w.base, detector.w)
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
    start, end = _evidence(text, facts[start_sent].span.start_char, facts[end_sent].span.end_char)
    return Candidate(
        kind="deal", vendor=vendors[0], vendors=vendors, country=country,
        counterpart=counterpart.text if counterpart else None,
        counterpart_type=counterpart.type if counterpart else None,
        deal_type=deal_types[0] if deal_types else "other", deal_types=deal_types or ["other"],
        stage=stage, value=value, currency=currency, year=year, score=round(score, 3),
        sentence=text[start:end], start=start, end=end, signals=signals)


def _pick_counterpart(detector: DealDetector, facts: list[SentenceFacts], window: list[tuple[int, float]],
                      homes: set[str]) -> tuple[Counterpart | None, float]:
    pool = [(cp, weight) for j, weight in window for cp in facts[j].counterparts]
    if not pool:
        return None, 0.0
    foreign = [(cp, w) for cp, w in pool if cp.country and cp.country not in homes]
    unknown = [(cp, w) for cp, w in pool if not cp.country]
    home = [(cp, w) for cp, w in pool if cp.country in homes]
    foreign_countries = any(code not in homes for j, _ in window
                            for code, _, _ in facts[j].countries)
    # A home-country body (a Chinese ministry or lender) is the counterpart only when nothing
    # foreign is in sight: then the deal is domestic. A body of unknown country goes with a
    # foreign one, and loses a tie to a home one ("the Hainan provincial government" beats the
    # bare "government" of the same sentence).
    if foreign:
        candidates = foreign + unknown
    elif foreign_countries:
        candidates = unknown
    else:
        candidates = unknown + home
    if not candidates:
        return None, 0.0
    own = window[0][0]
    # A party in the sentence itself beats a stronger-sounding one next door.
    bonus = detector.ev.own_sentence
    return max(candidates, key=lambda p: (p[0].strength * p[1] + (bonus if p[0].sentence == own else 0),
                                          p[0].country is not None, -p[0].token))


def _unlisted_party(detector: DealDetector, facts: list[SentenceFacts], i: int) -> Counterpart | None:
    """An organisation the statistical model found where the deal's other party stands
    ("a contract with Zamtel"): shown to the reviewer as of unknown type, worth no score."""
    fact = facts[i]
    doc = fact.span.doc
    prepositions = detector.grammar.words.unlisted_party_prepositions
    for text, t in fact.orgs:
        if t > 0 and doc[t - 1].lower_ in prepositions and fact.trigger:
            return Counterpart(text, "unknown", None, 0.0, i, t)
    return None


def _negative(detector: DealDetector, facts: list[SentenceFacts], window: list[tuple[int, float]],
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
    around = [facts[j] for j, _ in window[1:] + _lede(detector, facts) if j != window[0][0]]
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


def _deal_types(facts: list[SentenceFacts], window: list[tuple[int, float]]) -> list[str]:
    """Deal types named in the sentence, in order, then those its neighbours add."""
    names: list[str] = []
    for j, _ in window:
        found = sorted((t, cat[5:]) for cat, hits in facts[j].words.items()
                       if cat.startswith("type:") for _, t in hits)
        names += [name for _, name in found]
    return list(dict.fromkeys(names))


def _deal_stage(detector: DealDetector, facts: list[SentenceFacts], window: list[tuple[int, float]],
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


def _later_stage(stages: Iterable[tuple[str, bool]], first: str, order: list[str]) -> str:
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


def _value(detector: DealDetector, facts: list[SentenceFacts], window: list[tuple[int, float]],
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


def _aggregate_candidate(text: str, detector: DealDetector, facts: list[SentenceFacts],
                         i: int, story: _Story) -> Candidate | None:
    vendors, distance = _vendors_for(facts, i, story)
    if not vendors and i + 1 < len(facts):
        vendors, distance = list(dict.fromkeys(facts[i + 1].vendors)), 1
    if not vendors:
        return None
    fact = facts[i]
    window = _window(detector, facts, i)
    deal_types = _deal_types(facts, window)
    w = detector.w
    signals: dict[str, Any] = {
        "survey": 1.0 if fact.words.get("agg_survey") else 0.0,
        "deal_type": 1.0 if deal_types else 0.0,
        "counterpart": 1.0 if any(facts[j].counterparts for j, _ in window) else 0.0,
        "negative": 1.0 if fact.negative else 0.0,
        "vendor_nearby": 1.0 if distance else 0.0,
    }
    score = _score(signals, AGGREGATE_WEIGHTS, w.aggregate_base, w)
    start, end = _evidence(text, fact.span.start_char, fact.span.end_char)
    return Candidate(
        kind="aggregate", vendor=vendors[0], vendors=vendors, country=None, counterpart=None,
        counterpart_type=None, deal_type=deal_types[0] if deal_types else "other",
        deal_types=deal_types or ["other"], stage="unknown", value=None, currency=None,
        year=next(iter(fact.years), None), score=round(score, 3), sentence=text[start:end],
        start=start, end=end, signals=signals)


def _evidence(text: str, start: int, end: int) -> tuple[int, int]:
    """Character offsets of the evidence without the whitespace around it."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _score(signals: Mapping[str, Any], weights: Mapping[str, str], base: float,
           scoring: Scoring) -> float:
    """Logistic combination of the signals with their weights (DEAL_WEIGHTS, AGGREGATE_WEIGHTS)."""
    return _logistic(base + sum(getattr(scoring, weight) * float(signals[signal])
                                for signal, weight in weights.items()))


# --- one candidate per deal -----------------------------------------------------------------


def _merge(found: list[tuple[int, Candidate]], detector: DealDetector) -> list[Candidate]:
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
    found = [item for item in found if _kept(item[1], detector.w.keep) or any(
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


def _combine(group: list[Candidate], detector: DealDetector) -> Candidate:
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
    merged.stage = _later_stage(
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
        merged.score = round(_score(merged.signals, DEAL_WEIGHTS, detector.w.base, detector.w), 3)
    if merged.kind == "deal" and not (best.signals.get("counterpart", 0.0) >= strongest):
        # One sentence saying the deal is with a private firm, or at home, says it for all.
        for name in ("domestic", "private"):
            merged.signals[name] = max(float(c.signals.get(name, 0.0)) for c in group)
        if merged.signals["domestic"]:
            merged.country = None
        merged.score = round(_score(merged.signals, DEAL_WEIGHTS, detector.w.base, detector.w), 3)
    return merged
