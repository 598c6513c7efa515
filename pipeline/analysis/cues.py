"""Cue matching: the words that say a deal happened, failed or is only hoped for, as spans.

The `dealwatch_cues_v1` component writes every cue it finds into the span group
`doc.spans[CUES_KEY]`, one span per match, labelled with its category: "T:verb" (a signature,
an award), "stage:signed", "type:cloud", "neg" (a ban or lawsuit), "plan" (hopes, not deeds),
and so on. The deal assembler (pipeline.analysis.detect) reads only these spans, so each category can be
tested here alone and shown in displaCy (`displacy.render(doc, style="span",
options={"spans_key": CUES_KEY})`).

Two kinds of source feed it:
- the vocabularies of `rules.toml` (phrase lists matched on the lower-case or exact text, with
  verb forms and plurals generated), and
- lemma patterns from `config/patterns/<lang>/cues.jsonl` (spaCy Matcher token patterns on
  LEMMA and LOWER: "give the nod to", "lose out to", "open its own data centre").
Lemmas come from spaCy's lookup lemmatizer (spacy-lookups-data), which needs no statistical model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

from models.config import Rules
from pipeline.analysis.tag import phrase_docs
from pipeline.config import Config, ConfigError, LanguagePack

CUES_KEY = "dealwatch_cues"  # span group: one span per cue, label = its category
NEGATORS = ("not", "no", "never", "without", "n't", "nor", "neither")
NEGATOR = "negator"  # the category of the words above
_VERB_CATEGORIES = frozenset(("T:verb", "T:weak_verb", "cancel", "approval"))


def verb_forms(verb: str) -> set[str]:
    """The base, -s, -ed and -ing forms of a regular verb ("sign", "signs", "signed", "signing")."""
    if verb.endswith("e"):
        return {verb, verb + "s", verb + "d", verb[:-1] + "ing"}
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return {verb, verb[:-1] + "ies", verb[:-1] + "ied", verb + "ing"}
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return {verb, verb + "es", verb + "ed", verb + "ing"}
    return {verb, verb + "s", verb + "ed", verb + "ing"}


def plural_forms(noun: str) -> set[str]:
    """A noun phrase and its plural ("data centre", "data centres")."""
    head, _, last = noun.rpartition(" ")
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith(("s", "sh", "ch", "x")):
        plural = last + "es"
    else:
        plural = last + "s"
    return {noun, f"{head} {plural}".strip()}


def vocabularies(rules: Rules, negators: Iterable[str] = NEGATORS, inflect: bool = True
                 ) -> dict[str, list[str]]:
    """Category -> phrases, from the vocabularies of rules.toml (or a language's vocab.toml).
    With `inflect` English verb forms and plurals are generated; without, the phrases are
    matched by their lemmas (pipeline.analysis.cues.CueMatcher) and listed as they are."""
    t = rules.triggers

    def verbs(base: Iterable[str]) -> list[str]:
        forms: set[str] = set()
        for verb in base:
            forms |= (verb_forms(verb) if inflect else {verb}) | set(t.irregular.get(verb, []))
        return sorted(forms)

    def nouns(base: Iterable[str]) -> list[str]:
        if not inflect:
            return sorted(set(base))
        return sorted(set().union(*(plural_forms(n) for n in base))) if base else []

    vocab: dict[str, list[str]] = {
        "T:verb": verbs(t.verbs), "T:noun": nouns(t.nouns) + t.phrases,
        "T:weak_verb": verbs(t.weak_verbs), "T:weak_noun": nouns(t.weak_nouns) + t.weak_phrases,
        "neg": rules.negative_contexts, "weak_neg": rules.weak_negative_contexts,
        "non_party": rules.non_party_markers, "hedge": rules.hedges, "concessive": rules.concessives,
        "private": rules.private_markers, "anaphor": rules.anaphora,
        "agg_count": rules.aggregate.count_nouns, "agg_scope": rules.aggregate.scope_nouns,
        "agg_survey": rules.aggregate.survey_words, "agg_global": rules.aggregate.global_words,
        NEGATOR: list(negators),
    }
    for deal_type, words in rules.deal_types.items():
        vocab[f"type:{deal_type}"] = nouns(words)
    for stage, words in rules.stages.items():
        vocab[f"stage:{stage}"] = list(words)
    for stage, words in rules.weak_stages.items():
        vocab[f"weak_stage:{stage}"] = list(words)
    for ctype, words in rules.counterparts.words.items():
        vocab[f"cp:{ctype}"] = list(words)
    return {k: v for k, v in vocab.items() if v}


@Language.factory("dealwatch_cues_v1", default_config={
    "rules": {}, "patterns": [], "labels": ["VENDOR"], "negators": list(NEGATORS),
    "phrase_match": "lower", "determiners": []})
def make_cue_matcher(nlp: Language, name: str, rules: dict[str, Any],
                     patterns: list[dict[str, Any]], labels: list[str], negators: list[str],
                     phrase_match: str, determiners: list[str]) -> CueMatcher:
    return CueMatcher(nlp, Rules.model_validate(rules), patterns, labels, negators, phrase_match,
                      determiners)


class CueMatcher:
    """Writes doc.spans[CUES_KEY] on docs that name an entity of `labels` (a watchlist vendor):
    a document that names none cannot yield a deal, so its cues are never looked for."""

    def __init__(self, nlp: Language, rules: Rules, patterns: Sequence[Mapping[str, Any]],
                 labels: Iterable[str] = ("VENDOR",), negators: Iterable[str] = NEGATORS,
                 phrase_match: str = "lower", determiners: Iterable[str] = ()) -> None:
        self.labels = frozenset(labels)
        self.determiners = frozenset(determiners)
        self.lower_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.exact_matcher = PhraseMatcher(nlp.vocab, attr="ORTH")
        by_lemma = phrase_match == "lemma"
        # a language read by lemmas: each lower-case phrase also matches by its lemmas, which
        # the lemmatizer before this component gives the text and gives the phrase here alike
        self.lemma_phrases = PhraseMatcher(nlp.vocab, attr="LEMMA") if by_lemma else None
        lemmatize = nlp.get_pipe("lookup_lemmatizer") if by_lemma else None
        for category, phrases in vocabularies(rules, negators, inflect=not by_lemma).items():
            lower = sorted({p for p in phrases if p == p.lower()})
            exact = sorted({p for p in phrases if p != p.lower()})
            if lower:
                docs = phrase_docs(nlp, lower)
                self.lower_matcher.add(category, docs)
                # counts are read as written ("acuerdos" counts, "un acuerdo" does not)
                if self.lemma_phrases is not None and lemmatize is not None \
                        and not category.startswith("agg_") and category != NEGATOR:
                    self.lemma_phrases.add(category, [lemmatize(doc) for doc in docs])
            if exact:
                self.exact_matcher.add(category, phrase_docs(nlp, exact))
        self.lemma_matcher = Matcher(nlp.vocab, validate=True)
        for pattern in patterns:
            try:
                self.lemma_matcher.add(pattern["label"], [pattern["pattern"]])
            except (ValueError, KeyError) as exc:  # spaCy's E154/E152 pattern errors
                first = str(exc).strip().splitlines()[0]
                raise ConfigError(f"{pattern.get('where', 'cue pattern')}: {first}") from None

    def _noun_use(self, doc: Doc, match_id: int, start: int, end: int) -> bool:
        """A verb's lemma matched on a noun right after an article: "la firma china" is the
        Chinese firm, not a signature ("firmar"); only verb-like categories are checked."""
        category = doc.vocab.strings[match_id]
        return (category in _VERB_CATEGORIES or category.startswith("stage:")) and start > 0 \
            and doc[start - 1].lower_ in self.determiners and doc[start].lower_ != doc[start].lemma_

    def __call__(self, doc: Doc) -> Doc:
        if not any(ent.label_ in self.labels for ent in doc.ents):
            doc.spans[CUES_KEY] = []
            return doc
        strings = doc.vocab.strings
        found = set(self.lower_matcher(doc)) | set(self.exact_matcher(doc))
        if len(self.lemma_matcher):  # a language may have no cue patterns of its own
            found |= set(self.lemma_matcher(doc))
        if self.lemma_phrases is not None:
            found |= {m for m in self.lemma_phrases(doc) if not self._noun_use(doc, *m)}
        found = {m for m in found if not _named_count(doc, strings[m[0]], m[1], m[2])}
        doc.spans[CUES_KEY] = [Span(doc, start, end, label=strings[match_id])
                               for match_id, start, end in sorted(found, key=lambda m: (m[1], m[2]))]
        return doc


def _named_count(doc: Doc, category: str, start: int, end: int) -> bool:
    """A count or survey word written as a name inside a sentence ("Contagem", the town; "Study"
    in a title) is the name, not the word: counts and surveys are common nouns."""
    return (category.startswith("agg_") and end - start == 1 and doc[start].is_title
            and not doc[start].is_sent_start and start > 0 and doc[start - 1].text not in ("“", "\"", "«"))


def add_cue_components(nlp: Language, config: Config, before: str | None = None,
                       pack: LanguagePack | None = None) -> None:
    """Add the lemmatizer and the cue matcher to a tagging pipeline (both run only on documents
    that name a watchlist vendor). Lemmas come from spaCy's lookup tables (spacy-lookups-data),
    so the rule-only path and the model path match the same lemma patterns the same way.
    `pack` is the language's (default: English, the config's own rules and patterns)."""
    pack = pack or config.pack("en")
    from spacy.lookups import load_lookups

    lemmatizer = nlp.add_pipe("lemmatizer", name="lookup_lemmatizer", before=before,
                              config={"mode": "lookup", "overwrite": True})
    lemmatizer.initialize(lookups=load_lookups(str(nlp.lang), ["lemma_lookup"]))  # type: ignore[attr-defined]
    nlp.add_pipe("dealwatch_gated_pipe_v1", name="vendor_lemmatizer", before=before,
                 config={"pipe": "lookup_lemmatizer", "labels": ["VENDOR"]})
    nlp.disable_pipe("lookup_lemmatizer")
    nlp.add_pipe("dealwatch_cues_v1", name="cues", before=before, config={
        "rules": pack.rules.model_dump(mode="json"),
        "patterns": [{"label": p["label"], "pattern": p["pattern"], "where": p.get("where", "")}
                     for p in pack.cue_patterns],
        "negators": pack.grammar.words.negators,
        "phrase_match": pack.grammar.phrase_match,
        "determiners": sorted({*pack.grammar.names.articles,
                               *pack.grammar.names.apposition_articles}),
    })
