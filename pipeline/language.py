"""The language a text is written in: what its page declares, confirmed by a language identifier.

Pages declare a language (`<html lang>`, `og:locale`, the `Content-Language` header) that is
often a template's default rather than the article's: a German blog declaring English, an
English page declaring German. The identifier (py3langid, a naive Bayes model over byte n-grams
shipped inside its wheel: nothing downloads at run time) reads the first `SAMPLE_CHARS`
characters of the text and decides:

- it agrees with the declaration: the declared language ("declared+identified");
- it confidently (`CONFIDENT`) names another: the identified one wins ("identified"); the
  declaration is kept alongside, so a reviewer can see that the page said otherwise;
- it is not confident (a mixed-language page) or the text is too short to tell: the declared
  one ("declared");
- nothing was declared: the identified one when it reaches `GUESS`, else no language
  ("unknown").

A text in a script or language dealwatch has no patterns for gets its own code all the same
(zh, ar, ru, …): whether a language is analysed is the analyser's business, and a page it does
not read is recorded as such, never read as English.

The identifier is restricted to the languages with an ISO 639-1 code (the code dealwatch stores),
less the classical and constructed ones no newsroom writes in (Latin, Sanskrit, Esperanto,
Volapük). Its model also knows regional varieties under ISO 639-3 codes (Extremaduran,
Moroccan and Egyptian Arabic, Wu and Cantonese Chinese, Nigerian Pidgin, …) which take a share
of their standard language's probability on news text: 46% of a Chinese sentence went to Wu,
42% of an Arabic one to Moroccan and Egyptian Arabic, and a Florida sports story was English at
0.72 instead of 0.95. Restricted, each page gets the code of its standard language with the
confidence it deserves, and scoring is faster for the smaller model.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

SAMPLE_CHARS = 2000  # identify on the start of a text: cost stays flat however long it is
PIECE_CHARS = 500  # the sample is scored in pieces, so that a mixed text shows as mixed
MIN_LETTERS = 20  # fewer letters than this in the sample: too short to tell
CONFIDENT = 0.9  # the identifier overrides a declaration only at this probability or above
GUESS = 0.5  # an undeclared text takes the identified language only at this probability or above
# Classical and constructed languages: the model knows them, no news outlet writes in them.
NOT_NEWS_LANGUAGES = frozenset({"la", "sa", "eo", "vo"})
# Withdrawn or alternative ISO 639-1 codes that pages still declare, and Norwegian Bokmål,
# which the identifier calls Norwegian.
ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "sh": "sr", "nb": "no"}

_TAG = re.compile(r"\s*([A-Za-z]{2,3})(?:[-_,;\s]|$)")

SOURCES = ("declared", "identified", "declared+identified", "unknown")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """What `identify` decided: the language (ISO 639-1) or None, where that came from, how sure
    the identifier was of it (0.0 when it did not run), and what the page declared."""

    code: str | None
    source: str  # declared | identified | declared+identified | unknown
    confidence: float
    declared: str | None = None


@cache
def _iso639_1() -> dict[str, str]:
    """Every ISO 639-1 code, and the ISO 639-2/3 codes (terminology and bibliographic) that have
    one, mapped to it (pycountry's ISO 639-3 table)."""
    import pycountry

    codes: dict[str, str] = {}
    for lang in pycountry.languages:
        alpha_2 = getattr(lang, "alpha_2", None)
        if not alpha_2:
            continue
        codes[alpha_2] = alpha_2
        for attr in ("alpha_3", "bibliographic"):
            if other := getattr(lang, attr, None):
                codes.setdefault(other, alpha_2)
    for alias, code in ALIASES.items():
        codes[alias] = code
    return codes


def normalise_language(tag: str | None) -> str | None:
    """The ISO 639-1 code of a declared language tag ("pt-BR", "fr_FR", "es-419", "spa",
    "en-US,en;q=0.9" → "pt", "fr", "es", "es", "en"), or None for no tag, "und", "mul", "zxx",
    "x-default" or anything that names no language."""
    if not tag or not isinstance(tag, str):
        return None
    match = _TAG.match(tag)
    if not match:
        return None
    return _iso639_1().get(match.group(1).lower())


class _Identifier:
    """py3langid's identifier, loaded once per process (half a second) and restricted to the
    languages above; its scoring is read-only, so threads may share it."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        known = _iso639_1()
        ident.set_languages(sorted(code for code in set(ident.nb_classes)
                                   if len(code) == 2 and code in known
                                   and code not in NOT_NEWS_LANGUAGES))
        self._ident = ident
        self.languages = frozenset(ident.nb_classes)

    def rank(self, text: str) -> list[tuple[str, float]]:
        return [(code, float(p)) for code, p in self._ident.rank(text)]


_lock = threading.Lock()
_loaded: _Identifier | None = None


def _identifier() -> _Identifier:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _Identifier()
    return _loaded


def identifiable_languages() -> frozenset[str]:
    """The ISO 639-1 codes the identifier can name."""
    return _identifier().languages


def _pieces(text: str) -> list[str]:
    """The start of the text (`SAMPLE_CHARS`) in pieces of about `PIECE_CHARS`, cut at line
    breaks or spaces so that a paragraph, or at least a word, stays whole."""
    pieces: list[str] = []
    start, end = 0, min(len(text), SAMPLE_CHARS)
    while start < end:
        stop = min(start + PIECE_CHARS, end)
        if stop < len(text):
            cut = text.rfind("\n", start + PIECE_CHARS // 2, stop)
            if cut < 0:
                cut = text.rfind(" ", start + PIECE_CHARS // 2, stop)
            stop = cut if cut > 0 else stop
        pieces.append(text[start:stop])
        start = stop
    return pieces


def _letters(text: str) -> int:
    return sum(map(str.isalpha, text))


def _scores(text: str, declared: str | None = None) -> tuple[dict[str, float], int]:
    """Each language's probability over the sample, the mean of its pieces' weighted by their
    letters, and the letters read. A page in one language scores it near 1; a page half in
    one language and half in another scores each near 0.5, however long it is (the identifier
    grows surer with length on the whole text, mixed or not).

    When the first piece is confidently in the declared language (or in one language, when none
    was declared), the rest is not read: more pieces could only make the text mixed, and a mixed
    text keeps its declared language anyway (undeclared, it has no one language to find). Most
    pages stop there, which keeps identification cheap (docs/benchmarks.md). The pieces decide
    where it matters: whether a page that declares one language and opens in another is in the
    other (a wrong declaration) or in both (mixed)."""
    identifier = _identifier()
    totals: dict[str, float] = {}
    letters = 0
    for piece in _pieces(text):
        weight = _letters(piece)
        if weight < MIN_LETTERS:  # a heading or a date line says little and scores wildly
            continue
        ranked = identifier.rank(piece)
        if not letters and ranked[0][1] >= CONFIDENT and declared in (None, ranked[0][0]):
            return dict(ranked), weight
        letters += weight
        for code, p in ranked:
            totals[code] = totals.get(code, 0.0) + weight * p
    return ({code: total / letters for code, total in totals.items()} if letters else {}), letters


def identify(text: str, declared: str | None = None) -> LanguageGuess:
    """The language of a text, from what its page declared (a tag as the page wrote it, e.g.
    "pt-BR"; normalised here) confirmed by the identifier (see the module's notes)."""
    declared_code = normalise_language(declared)
    scores, letters = _scores(text or "", declared_code)
    if letters < MIN_LETTERS:
        if declared_code:
            return LanguageGuess(declared_code, "declared", 0.0, declared_code)
        return LanguageGuess(None, "unknown", 0.0, None)
    best = max(scores, key=scores.__getitem__)
    confidence = scores[best]
    if declared_code:
        if best == declared_code:
            return LanguageGuess(declared_code, "declared+identified", confidence, declared_code)
        if confidence >= CONFIDENT:
            return LanguageGuess(best, "identified", confidence, declared_code)
        # mixed or unclear text: the page knows best; how sure the identifier is of that
        return LanguageGuess(declared_code, "declared", scores.get(declared_code, 0.0),
                             declared_code)
    if confidence >= GUESS:
        return LanguageGuess(best, "identified", confidence, None)
    return LanguageGuess(None, "unknown", confidence, None)
