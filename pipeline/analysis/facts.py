"""What deal detection works on: the detector's settings, compiled once, and what a sentence says."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spacy.tokens import Doc, Span, Token

from models.config import Grammar, Rules, WatchlistEntry
from pipeline.analysis.gazetteer import POSSESSIVES, Gazetteer, load_gazetteer


# How sure we are that a public body is a party, how far evidence next door carries, and every
# weight: `[scoring]` and `[scoring.evidence]` of rules.toml (detector.w, detector.ev). The
# language's function words and reaches: patterns/<lang>/grammar.toml (detector.grammar).
class DetectorSettings:
    """The rules, the language's grammar and the word sets made of them, built once per pipeline:
    what every step of detection asks of the language (the component is detect.DealDetector)."""

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

    def home_of(self, vendor_ids: Iterable[str]) -> set[str]:
        homes: set[str] = set()
        for vid in vendor_ids:
            entry = self.watch.get(vid)
            if entry and entry.country:
                homes |= self.home_regions.get(entry.country, {entry.country})
        return homes


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


class VendorMentions:
    """Where a doc names watchlist vendors, as token arrays: an article may name hundreds."""

    def __init__(self, n: int) -> None:
        self.inside = bytearray(n)
        self.starts = bytearray(n + 1)  # 1 at the first token of a name
        self.ends = bytearray(n + 1)  # 1 at the token after a name

    def add(self, start: int, end: int) -> None:
        self.inside[start:end] = b"\1" * (end - start)
        self.starts[start] = self.ends[end] = 1

    def said_of(self, doc: Doc, t: int, detector: DetectorSettings) -> bool:
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
