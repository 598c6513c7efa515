"""Text repairs every stage needs, whatever a page sent."""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache
from typing import overload

_SURROGATE = re.compile("[\ud800-\udfff]")
# Invisible characters that are not Unicode format characters (Cf) but pad or split words the
# same way: the combining grapheme joiner, Hangul fillers, variation selectors.
_OTHER_INVISIBLE = "\u034f\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef"
# Zero-width (non-)joiners shape Persian, Arabic and Indic words: kept between two letters of
# such scripts, removed everywhere else (e.g. inside "Hua\u200dwei").
_JOINERS = "\u200c\u200d"
_SCRIPT_LETTER = r"[^\W\d_A-Za-z]"


@overload
def without_surrogates(text: str) -> str: ...
@overload
def without_surrogates(text: None) -> None: ...
def without_surrogates(text: str | None) -> str | None:
    """Lone UTF-16 surrogates (from broken entities like &#xD800;) replaced, character for
    character, by U+FFFD: SQLite and spaCy refuse them, and offsets stay right."""
    return _SURROGATE.sub("\ufffd", text) if text else text


@cache
def _invisible() -> re.Pattern[str]:
    """Format characters (Unicode category Cf: zero-width spaces, soft hyphens, bidi controls,
    byte-order marks, tag characters) and the other invisible ones, joiners between two letters
    of a script that needs them excepted."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) == "Cf" and chr(code) not in _JOINERS:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    cf = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                 for a, b in ranges)
    return re.compile(f"[{cf}{_OTHER_INVISIBLE}]+"
                      f"|(?<!{_SCRIPT_LETTER})[{_JOINERS}]+|[{_JOINERS}]+(?!{_SCRIPT_LETTER})")


@overload
def clean_text(text: str) -> str: ...
@overload
def clean_text(text: None) -> None: ...
def clean_text(text: str | None) -> str | None:
    """Text as every stage reads and stores it: lone surrogates replaced by U+FFFD, and invisible
    format characters removed, so that "Hua\u200bwei" is Huawei and a page padded with
    zero-width characters costs what its visible text costs.

    Removing characters moves offsets: offsets found in clean text are offsets into the clean
    text. Extraction stores article text clean, so evidence offsets index the stored text.
    """
    return _invisible().sub("", without_surrogates(text)) if text else text
