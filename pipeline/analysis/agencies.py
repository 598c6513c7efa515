"""The agency matcher: public bodies the watchlist does not name, as counterpart spans and entities."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

from models.config import NameWords
from pipeline.analysis.gazetteer import POSSESSIVES, Gazetteer, load_gazetteer
from pipeline.analysis.pipes import phrase_docs
from pipeline.analysis.places import PLACES_KEY

COUNTERPARTS_KEY = "dealwatch_counterparts"  # span group: public bodies, label = counterpart_type
if not Token.has_extension("dw_name_word"):
    Token.set_extension("dw_name_word", default=False)

# Capitalised, yet never a word of a name or a place: "… Science on Friday", "Kenya in March".
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
_NO_DATE = rf"(?!(?:{'|'.join(WEEKDAYS + MONTHS)})$)"
# A capitalised word of a name.
_CAP = _NO_DATE + r"(?:[A-Z0-9À-ÖØ-Þ][\w'’.&-]*|e[A-Z][\w-]*)"
# A word of a place name, maybe with an apostrophe ("N'Djamena"), never an amount ("Sh17.5bn").
_PLACE_WORD = _NO_DATE + r"(?![a-zß-öø-ÿ])[^\W\d_][^\W\d_]*(?:['’][A-Za-z]+)?"


@Language.factory("dealwatch_agency_matcher_v1",
                  default_config={"counterparts": {}, "names": {}, "gazetteer": {}})
def make_agency_matcher(nlp: Language, name: str, counterparts: dict[str, Any],
                        names: dict[str, Any], gazetteer: dict[str, Any]) -> AgencyMatcher:
    return AgencyMatcher(nlp, counterparts, NameWords.model_validate(names),
                         load_gazetteer(**gazetteer))


class AgencyMatcher:
    """Finds public bodies the watchlist does not name: 'Ministry of …', '… Authority',
    'the Kenyan government', 'Sabah state government', 'Ethiopia Telecom Corp.'.

    Each match goes into the doc.spans[COUNTERPARTS_KEY] group with its counterpart type as
    label and its country as kb_id; it becomes an AGENCY (or ORG for a state operator) entity
    where it hides no watchlist entity or country.
    """

    def __init__(self, nlp: Language, counterparts: Mapping[str, Any],
                 names: NameWords | None = None, gazetteer: Gazetteer | None = None) -> None:
        """`counterparts` is rules.counterparts as a plain dict; `names` the language's way of
        naming public bodies (English by default)."""
        names = names or NameWords()
        self.names = names
        self.of_words = frozenset(names.of)
        self.place_of = frozenset(names.place_of)
        self.articles = frozenset(names.articles)
        self.connectors = frozenset(names.connectors)
        heads: Mapping[str, list[str]] = counterparts.get("heads", {})
        country_heads: Mapping[str, list[str]] = counterparts.get("country_heads", {})
        modifiers: Mapping[str, list[str]] = counterparts.get("modifiers", {})
        self.head_type = {word: ctype for ctype, words in heads.items() for word in words}
        self.country_head_type = {word: ctype for ctype, words in country_heads.items()
                                  for word in words}
        self.modifier_type = {word: ctype for ctype, words in modifiers.items() for word in words}
        self.subdivision_nouns = frozenset(counterparts.get("subdivision_nouns", []))
        soe_names = list(counterparts.get("soe_names", []))
        # "state-owned", "government-run": the words rules.toml lists, written apart
        owners, owned = _hyphenated(counterparts.get("words", {}).get("soe", []))
        cap = {"TEXT": {"REGEX": f"^{_CAP}$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR", "COUNTRY"]}}
        cap_or_conn = {"TEXT": {"REGEX": f"^(?:{_CAP}|{'|'.join(map(re.escape, names.connectors))})$"},
                       "ENT_TYPE": {"NOT_IN": ["VENDOR", "COUNTRY"]}}
        head = {"ORTH": {"IN": sorted(self.head_type)}}
        # "Directorate General for National Security", "Directorate-General of Customs"
        general = {"ORTH": {"IN": names.head_followers}, "OP": "{0,2}"}
        of = {"LOWER": {"IN": names.of}}
        the = {"LOWER": {"IN": names.articles}, "OP": "?"}
        # a country's words, however many its longest name has ("Papua New Guinea")
        longest = _longest_country_name(nlp, gazetteer or load_gazetteer())
        country = {"ENT_TYPE": "COUNTRY", "OP": f"{{1,{longest}}}"}
        poss = {"ORTH": {"IN": list(POSSESSIVES)}, "OP": "?"}
        mods = {"IS_ALPHA": True, "IS_STOP": False, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}, "OP": "{0,3}"}
        country_head = {"LOWER": {"IN": sorted(self.country_head_type)}}
        place_head = {"LOWER": {"IN": sorted(counterparts.get("place_heads", []))}}
        # A place name is words, maybe hyphenated ("KwaZulu-Natal"): never an amount ("Sh17.5bn")
        word = {"TEXT": {"REGEX": f"^{_PLACE_WORD}$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}}
        place = {"TEXT": {"REGEX": f"^(?:{_PLACE_WORD}|-)$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}}
        owner = {"LOWER": {"IN": sorted(owners)}}
        state_owned: list[dict[str, Any]] = [owner, {"ORTH": "-", "OP": "?"},
                                             {"LOWER": {"IN": sorted(owned)}}]
        police = {"ORTH": {"IN": names.police_words}}
        government = {"LOWER": {"IN": names.government_words}}
        state = {"LOWER": {"IN": names.state_words}}
        place_of = {"LOWER": {"IN": names.of}}
        subdivision = {"ORTH": {"IN": sorted(self.subdivision_nouns)}}
        soe_name = {"ORTH": {"IN": soe_names}}
        # "telecom operator", "carrier": what the company is; "of", "and the" would run on to
        # another name ("the State of Israel", "state government and the Nigerian …")
        described = {"IS_LOWER": True, "IS_STOP": False}
        patterns: dict[str, list[list[dict[str, Any]]]] = {
            "NAMED": [
                [head, general, of, the, cap, {**cap_or_conn, "OP": "{0,8}"}],  # Ministry of Interior
                # Ministry of Information, Communications and the Digital Economy
                [head, of, the, cap, {**cap_or_conn, "OP": "{0,4}"}, {"ORTH": ","},
                 {**cap, "OP": "{1,3}"}, {"LOWER": {"IN": [c for c in names.connectors if c.isalpha()]}},
                 the, {**cap, "OP": "{1,4}"}],
                [{**cap, "OP": "{1,6}"}, head],  # Communications Authority, National Police
                [{**cap, "OP": "{0,5}"}, police,  # Police Service, Police Department
                 {"ORTH": {"IN": names.police_units}}],
            ],
            "PLACE_GOVERNMENT": [
                [country, poss, mods, country_head],  # the Kenyan government, Egypt's telecom ministry
                # Sabah state government
                [word, {**place, "OP": "{0,3}"}, poss, {**mods, "OP": "{0,2}"}, place_head],
                [government, place_of, the, word, {**place, "OP": "{0,3}"}],
                # the province of Mendoza, the state of Sabah (lower case: "State of Israel" is no state)
                [subdivision, place_of, the, word, {**place, "OP": "{0,3}"}],
            ],
            "SOE_DESCRIBED": [
                # the state-owned Vanuatu Interisland Cable Company, state telecom operator Entel
                [*state_owned, {**described, "OP": "{0,3}"}, word, {**place, "OP": "{0,5}"}],
                [state, {**described, "OP": "{1,3}"}, word, {**place, "OP": "{0,3}"}],
            ],
            "SOE_APPOSITION": [
                # Zamtel, the state-owned operator; CNT, a state-run company
                [word, {**place, "OP": "{0,5}"}, {"ORTH": "(", "OP": "?"},  # … Ltd (NigComSat), a …
                 {"TEXT": {"REGEX": "^[A-Za-z]+$"}, "OP": "?"}, {"ORTH": ")", "OP": "?"},
                 {"ORTH": ","}, {"LOWER": {"IN": names.apposition_articles}, "OP": "?"}, *state_owned],
            ],
            "SOE_NAME": [
                # Telecom Egypt, the Bolivia National Telecommunications Company
                [country, {"ORTH": {"IN": names.national_words}, "OP": "?"}, soe_name,
                 {"ORTH": {"IN": names.company_suffixes}, "OP": "?"}],
                [soe_name, country],
            ],
        }
        single_soe = sorted(w for w in counterparts.get("words", {}).get("soe", [])
                            if w.isalpha())
        soe_word = {"LOWER": {"IN": single_soe}}
        if names.lower_inside:
            # "Délégation générale à la sûreté nationale", "Agence nationale de l'informatique
            # de l'État": after the head, lower-case words, connectors and capitalised ones,
            # up to a stop word, a vendor or a country (a trailing connector is trimmed)
            inside = {"_": {"dw_name_word": True}}  # set around its anchors in _matches
            patterns["NAMED"].append([head, {**inside, "OP": "{1,8}"}])
        if names.head_first:
            # Names that start with their head and go on with capitalised words before "de":
            # "Agencia Nacional de Innovación", "Empresa Nacional de Telecomunicaciones".
            patterns["NAMED"].append(
                [head, {**cap, "OP": "{1,3}"}, of, the, cap, {**cap_or_conn, "OP": "{0,8}"}])
            patterns["NAMED"].append([head, {**cap, "OP": "{1,3}"}])
            # A head and the country's adjective after it: "el gobierno boliviano", "la policía
            # nacional", "le gouvernement ivoirien"; or its name: "el Gobierno de Bolivia".
            patterns["PLACE_GOVERNMENT"].append([country_head, {**mods, "OP": "{0,2}"}, country])
            patterns["PLACE_GOVERNMENT"].append([country_head, place_of, the, country])
        if single_soe:
            # "la estatal Entel", "a empresa estatal Angola Cables", "l'opérateur public Camtel"
            patterns["SOE_DESCRIBED"].append(
                [{**described, "OP": "{0,2}"}, soe_word, {**described, "OP": "{0,2}"}, word,
                 {**place, "OP": "{0,5}"}])
        # The Matcher's capitalisation tests are slow to run over a whole article: each kind of
        # pattern runs only on the words around its anchors, the rare words every one of its
        # patterns contains ("Ministry", "government", "state"), as far as its patterns reach.
        anchors = (head, police, country_head, place_head, government, subdivision, state, owner,
                   soe_name, soe_word)
        self.anchors = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.lower_anchors = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.kinds: list[tuple[int, Matcher, int, int]] = []  # key, its patterns, reach
        for key, key_patterns in patterns.items():
            matcher = Matcher(nlp.vocab)
            matcher.add(key, key_patterns, greedy="LONGEST")
            words, before, after = _anchoring(key_patterns, anchors)
            for attr, phrase_matcher in (("ORTH", self.anchors), ("LOWER", self.lower_anchors)):
                if words[attr]:
                    phrase_matcher.add(key, phrase_docs(nlp, sorted(words[attr])))
            self.kinds.append((nlp.vocab.strings[key], matcher, before, after))
        self._named = nlp.vocab.strings["NAMED"]
        self._soe = nlp.vocab.strings["SOE_NAME"]
        self._soe_described = nlp.vocab.strings["SOE_DESCRIBED"]
        self._soe_apposition = nlp.vocab.strings["SOE_APPOSITION"]

    def _matches(self, doc: Doc) -> list[tuple[int, int, int]]:
        anchors: dict[int, set[int]] = {}
        for key, start, _ in [*self.anchors(doc), *self.lower_anchors(doc)]:
            anchors.setdefault(key, set()).add(start)
        found = []
        for key, matcher, before, after in self.kinds:
            ranges: list[list[int]] = []
            for a in sorted(anchors.get(key, ())):
                lo, hi = max(a - before, 0), min(a + after + 1, len(doc))
                if ranges and lo <= ranges[-1][1]:
                    ranges[-1][1] = hi
                else:
                    ranges.append([lo, hi])
            if key == self._named and self.names.lower_inside:
                self._mark_name_words(doc, ranges)
            found += [(match_id, lo + start, lo + end) for lo, hi in ranges
                      for match_id, start, end in matcher(doc[lo:hi])]
        return found

    def _mark_name_words(self, doc: Doc, ranges: list[list[int]]) -> None:
        """Set token._.dw_name_word where the names' patterns will read it (around their
        anchors, not over the whole article): a word that may stand inside a name written in
        lower case after its head, a capitalised word, a lower-case word that is no stop word,
        a connector."""
        for lo, hi in ranges:
            for token in doc[lo:hi]:
                token._.dw_name_word = token.ent_type_ not in ("VENDOR", "COUNTRY") and (
                    token.is_title or token.is_upper or token.lower_ in self.connectors
                    or (token.is_alpha and not token.is_stop))

    def __call__(self, doc: Doc) -> Doc:
        # Tokens of the watchlist's names, and of those or a country's: a body is not found
        # twice, and its entity hides neither. Arrays, since an article may name thousands.
        listed, shielded = bytearray(len(doc)), bytearray(len(doc))
        for e in doc.ents:
            if e.ent_id_ or e.label_ == "COUNTRY":
                shielded[e.start:e.end] = b"\1" * len(e)
                if e.label_ != "COUNTRY":
                    listed[e.start:e.end] = b"\1" * len(e)
        places: dict[int, list[tuple[int, str]]] = {}  # start -> (end, ISO code)
        for (p_start, p_end), code in {(p.start, p.end): p.kb_id_
                                       for p in doc.spans.get(PLACES_KEY, [])}.items():
            places.setdefault(p_start, []).append((p_end, code))
        found: dict[tuple[int, int], tuple[Span, bool]] = {}  # span, whether a state company
        for match_id, start, end in self._matches(doc):
            if match_id == self._soe_described:
                # the name is what follows the description: skip "state-owned telecom operator"
                while start < end and not (doc[start].is_title or doc[start].is_upper):
                    start += 1
                match_id = self._soe
            elif match_id == self._soe_apposition:
                # the name is what comes before the comma (or its acronym in brackets)
                end = next(t for t in range(start, end) if doc[t].text in (",", "("))
                match_id = self._soe
            start, end = _trim(doc, start, end, self.connectors, self.head_type)
            # "Republican-dominated state government": a hyphen joins a name's words only
            if any(doc[k].text == "-" and doc[k + 1].is_lower for k in range(start, end - 1)):
                continue
            # A body the watchlist names (with its id) is not matched a second time.
            if end <= start or any(listed[start:end]):
                continue
            ctype, national = self._type(doc, match_id, start, end)
            code, start, end, from_place = self._country(doc, start, end, places)
            if _wire_credit(doc, start, end):
                continue
            # the government of a city or a province is sub-national, unless a word says it is
            # the country's ("the Abuja federal government")
            if from_place and ctype == "government" and not national:
                ctype = "subnational"
            span = Span(doc, start, end, label=ctype, kb_id=code)
            found[(start, end)] = (span, match_id == self._soe)
        counterparts = filter_spans([span for span, _ in found.values()])
        doc.spans[COUNTERPARTS_KEY] = counterparts
        trailing = self.place_of | self.articles
        new_ents = [ent for span in counterparts if (ent := _entity(
            doc, span, found[(span.start, span.end)][1], listed, shielded, trailing))]
        if new_ents:
            taken = bytearray(len(doc))
            for ent in new_ents:
                taken[ent.start:ent.end] = b"\1" * len(ent)
            keep = [e for e in doc.ents if not any(taken[e.start:e.end])]
            doc.ents = filter_spans(keep + new_ents)
        return doc

    def _type(self, doc: Doc, match_id: int, start: int, end: int) -> tuple[str, bool]:
        """The body's counterpart type, and whether a word before its head makes it national."""
        if match_id == self._soe:
            return "soe", False
        ctype, head = "government", end
        # The head of an English name is its last head word ("Office of the Prime Minister"
        # is an office), or the first one when an "of"-phrase follows it.
        for token in doc[start:end]:
            if token.text in self.head_type:
                ctype, head = self.head_type[token.text], token.i
                # in a language whose names start with their head the first one is it
                # ("Agence nationale … de l'État" is an agency)
                if self.names.head_first or (token.i + 1 < end
                                             and doc[token.i + 1].lower_ in self.of_words):
                    break
            elif token.lower_ in self.country_head_type:
                ctype, head = self.country_head_type[token.lower_], token.i
        # Only the words before the head say what kind of body it is: "Kano State Police
        # Command" is a state's, the "Ministry of Local Government" and the "Ministry of State
        # for Public Service" are the nation's.
        kinds = {self.modifier_type.get(token.lower_) for token in doc[start:head]}
        if "subnational" in kinds or any(  # "the province of Mendoza"
                token.lower_ in self.subdivision_nouns and doc[token.i + 1].lower_ in self.of_words
                for token in doc[start:min(head, end - 1)]):
            return "subnational", False
        return ctype, "government" in kinds

    def _country(self, doc: Doc, start: int, end: int,
                 places: Mapping[int, list[tuple[int, str]]]) -> tuple[str, int, int, bool]:
        """The body's country, and the span widened to the country words next to it."""
        for token in doc[start:end]:
            if token.ent_type_ == "COUNTRY":
                return token.ent_id_, start, end, False
        before = start - 1
        if before >= 0 and doc[before].text in POSSESSIVES:
            before -= 1
        if before >= 0 and doc[before].ent_type_ == "COUNTRY":
            first = before
            while first > 0 and doc[first - 1].ent_type_ == "COUNTRY" and doc[first].ent_iob_ == "I":
                first -= 1
            return doc[before].ent_id_, first, end, False
        if self.names.head_first and end < len(doc) and doc[end].ent_type_ == "COUNTRY":
            # "Ministério do Interior angolano", "Prefeitura de Sorocaba (SP)": the country's
            # adjective or mark after the name, whole
            last = end + 1
            while last < len(doc) and doc[last].ent_iob_ == "I":
                last += 1
            return doc[end].ent_id_, start, last, False
        if end + 1 < len(doc) and doc[end].lower_ in self.place_of:
            after = end + 1
            if doc[after].lower_ in self.articles and after + 1 < len(doc):
                after += 1
            if doc[after].ent_type_ == "COUNTRY":
                last = after
                while last + 1 < len(doc) and doc[last + 1].ent_iob_ == "I":
                    last += 1
                return doc[after].ent_id_, start, last + 1, False
        for p_start in range(start, end):
            for p_end, code in places.get(p_start, []):
                if code and p_end <= end:
                    return code, start, end, True
        return "", start, end, False


def _entity(doc: Doc, span: Span, is_soe: bool, listed: bytearray, shielded: bytearray,
            trailing: frozenset[str]) -> Span | None:
    """The AGENCY (or ORG) entity for a counterpart span, where it hides nothing the ruler found.

    Entities keep their countries: "Serbia's Office for …" tags "Serbia" COUNTRY and "Office
    for …" AGENCY, while the counterpart span keeps the whole phrase. A state company's name
    ("Ethiopia Telecom Corp.") is one ORG entity, country and all.
    """
    start, end = ((span.start, span.end) if is_soe
                  else _without_countries(doc, span.start, span.end, trailing))
    if not any(t.is_title or t.is_upper for t in doc[start:end]):
        return None  # "government" on its own is no name
    if any((listed if is_soe else shielded)[start:end]):
        return None
    return Span(doc, start, end, label="ORG" if is_soe else "AGENCY")


def _wire_credit(doc: Doc, start: int, end: int) -> bool:
    """A name in a dateline's brackets before its dash, "NAIROBI, 3 May (Agência Ipê) –":
    the agency that wrote the story, no party to it."""
    return (start > 0 and doc[start - 1].text == "(" and end + 1 < len(doc)
            and doc[end].text == ")" and doc[end + 1].text in ("–", "—", "-", "--", ".-", ":"))


def _trim(doc: Doc, start: int, end: int, connectors: frozenset[str],
          heads: Mapping[str, str]) -> tuple[int, int]:
    # Capitalised sentence openers ("The", "In") and trailing connectors are not part of a name;
    # a head is, even where the language's stop list has it ("Conselho de Ministros")
    while start < end and (doc[start].is_stop or doc[start].is_punct) \
            and doc[start].text not in heads:
        start += 1
    while end > start and (doc[end - 1].lower_ in connectors or doc[end - 1].is_punct):
        end -= 1
    return start, end


def _without_countries(doc: Doc, start: int, end: int, trailing: frozenset[str]) -> tuple[int, int]:
    while start < end and (doc[start].ent_type_ == "COUNTRY" or doc[start].text in POSSESSIVES):
        start += 1
    while end > start and (doc[end - 1].ent_type_ == "COUNTRY" or doc[end - 1].lower_ in trailing):
        end -= 1
    return start, end


def _hyphenated(words: Iterable[str]) -> tuple[set[str], set[str]]:
    """The two halves of hyphenated one-word entries: 'state-owned' -> {'state'}, {'owned'}."""
    firsts: set[str] = set()
    seconds: set[str] = set()
    for first, _, second in (w.partition("-") for w in words if "-" in w and " " not in w):
        firsts.add(first)
        seconds.add(second)
    return firsts, seconds


def _longest_country_name(nlp: Language, gazetteer: Gazetteer) -> int:
    """Words in the longest country name ("United Kingdom of Great Britain and Northern Ireland")."""
    return max(len(nlp.make_doc(text)) for text in gazetteer.countries)


def _anchoring(patterns: Iterable[list[dict[str, Any]]], anchors: Iterable[dict[str, Any]]
               ) -> tuple[dict[str, set[str]], int, int]:
    """The words of the patterns' anchors, by attribute, and how many words the patterns reach
    before and after them: a window that wide around an anchor sees each match whole.

    A pattern's anchor is the first of its tokens that is one of `anchors` (the very dict) and
    must match. A word list rules.toml leaves empty anchors nothing: its pattern never runs.
    """
    anchor_ids = {id(anchor) for anchor in anchors}
    words: dict[str, set[str]] = {"ORTH": set(), "LOWER": set()}
    before = after = 0
    for pattern in patterns:
        k = next((k for k, token in enumerate(pattern)
                  if id(token) in anchor_ids and _op_counts(token)[0]), None)
        if k is None:
            raise ValueError(f"pattern without an anchor word: {pattern}")
        attr, listed = _listed(pattern[k])
        words[attr] |= set(listed)
        most = [_op_counts(token)[1] for token in pattern]
        before, after = max(before, sum(most[:k])), max(after, sum(most[k + 1:]))
    return words, before, after


def _listed(token: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The attribute and the words an anchor token lists: {"ORTH": {"IN": […]}}, {"LOWER": "state"}."""
    for attr in ("ORTH", "LOWER"):
        value = token.get(attr)
        if isinstance(value, str):
            return attr, [value]
        if isinstance(value, dict) and "IN" in value:
            return attr, list(value["IN"])
    raise ValueError(f"an anchor lists the words it matches: {token}")


def _op_counts(token: Mapping[str, Any]) -> tuple[int, int]:
    """The fewest and most words a Matcher token pattern matches (bounded operators only)."""
    op = token.get("OP", "1")
    fixed = {"1": (1, 1), "?": (0, 1), "!": (0, 0)}
    if op in fixed:
        return fixed[op]
    bounds = re.fullmatch(r"\{(\d*)(,?)(\d*)\}", op)
    if not bounds or (bounds.group(2) and not bounds.group(3)):
        raise ValueError(f"an anchored pattern needs bounded operators, not {op!r}")
    low = int(bounds.group(1) or 0)
    return low, int(bounds.group(3)) if bounds.group(2) else low
