"""Tokenizer: one compiled regular expression in place of spaCy's affix-by-affix rule tokenizer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

logger = logging.getLogger(__name__)

# Abbreviations that keep their full stop (so "ZTE Corp. signed" is one sentence). spaCy's English
# exceptions supply most; these are the ones news about public bodies adds.
_EXTRA_ABBREVIATIONS = ("Govt.", "Dept.", "Rs.", "Pvt.", "Nos.", "Hon.", "Ave.", "Sr.")
# Ideographs stand one to a token: Chinese runs have no spaces, and "华为" must match inside
# "华为技术有限公司与…" as "Huawei" matches inside an English sentence.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_APOSTROPHES = "'’ʼ"
_CLITICS = "s|S|re|RE|ve|VE|ll|LL|d|D|m|M"


def _token_pattern(abbreviations: Iterable[str]) -> re.Pattern[str]:
    abbrev = "|".join(re.escape(a) for a in sorted(set(abbreviations), key=len, reverse=True))
    word = rf"[^\W{_CJK}ʼ]"  # ʼ (U+02BC) is a letter to Python, an apostrophe to writers
    return re.compile(
        # each match is a token with the single space after it, or a run of other whitespace
        r"(?P<token>"
        # most tokens are plain ASCII words before a space or a comma: one cheap test first
        r"[A-Za-z]+(?=[ \n\t,;!?)\]\"”]|$)"
        # links and addresses stay whole, so "zte" inside www.zte.com.cn is no vendor. A link
        # ends at its last character that is not punctuation ("… see https://zte.com/en.").
        # Both scan a run once: a link is never rejected after the scan, and an address starts
        # only where a run of its characters starts (else "-" * 100_000 would take minutes).
        rf"|(?:https?://|www\.)[^\s<>\"“”]*[^\s<>\"“”.,;:!?)\]'’]"
        rf"|(?<![\w.+-])[\w.+-]+@\w[\w-]*(?:\.\w[\w-]*)+"
        # initialisms and known abbreviations: U.S., e.g., U.S.-made; Corp., Sept., Mr.
        rf"|(?<!\w)(?:[A-Za-z]\.){{2,}}(?:-{word}+)?"
        rf"|(?<![\w.])(?:{abbrev})(?!\w)"
        rf"|(?<![\w.])[A-Z]\.(?=\s+[A-Z])"  # an initial before a name: "John F. Kennedy"
        # currency symbols before an amount: "US$75", "HK$1", "N$20" ("US" alone is a country)
        rf"|(?<![\w$])[A-Z][A-Za-z]{{0,2}}\$(?=\s?\d)"
        # contractions: "don't" -> do n't; possessives: "Kenya's" -> Kenya 's
        rf"|{word}+?(?=n[{_APOSTROPHES}]t\b)|n[{_APOSTROPHES}]t\b"
        rf"|(?<=\w)[{_APOSTROPHES}](?:{_CLITICS})\b"
        # numbers with separators, dotted names (0763.HK, zte.com.cn), words with inner
        # apostrophes (d'Ivoire, O'Brien) that are not clitics
        rf"|\d+(?:[.,]\d+)+{word}*"
        rf"|{word}+(?:\.{word}+)+"
        rf"|{word}+(?:[{_APOSTROPHES}](?!(?:{_CLITICS})\b){word}+)*"
        rf"|[{_CJK}]"
        rf"|\.\.\.+|[^\w\s]|\S)(?P<space> )?"
        r"|(?P<blank>\s+)")


class FastTokenizer:
    """Splits text into spaCy tokens with one regex pass; Doc.text stays the input, byte for byte.

    Whitespace follows spaCy's convention: a single space after a token is its trailing space,
    any other run of whitespace (line breaks, double spaces) is a token of its own.
    """

    def __init__(self, vocab: Vocab, abbreviations: Iterable[str] = ()) -> None:
        self.vocab = vocab
        self.abbreviations = sorted(set(abbreviations))
        self.pattern = _token_pattern(self.abbreviations)

    def __call__(self, text: str) -> Doc:
        # findall works in C; a Python loop over match objects cost as much as the regex
        found = self.pattern.findall(text)
        words = [token or blank for token, _, blank in found]
        spaces = [bool(space) for _, space, _ in found]
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    # spaCy serialises a pipeline's tokenizer with it; this one is rebuilt from its settings.
    def to_bytes(self, **kwargs: Any) -> bytes:
        return "\n".join(self.abbreviations).encode("utf-8")

    def from_bytes(self, data: bytes, **kwargs: Any) -> FastTokenizer:
        self.abbreviations = data.decode("utf-8").split("\n") if data else []
        self.pattern = _token_pattern(self.abbreviations)
        return self

    def to_disk(self, path: str | Path, **kwargs: Any) -> None:
        Path(path).write_bytes(self.to_bytes())

    def from_disk(self, path: str | Path, **kwargs: Any) -> FastTokenizer:
        return self.from_bytes(Path(path).read_bytes())


def default_abbreviations(nlp: Language) -> list[str]:
    """Abbreviations with a full stop from the language's tokenizer exceptions, plus ours."""
    exceptions = nlp.Defaults.tokenizer_exceptions or {}
    found = [text for text in exceptions if text.endswith(".") and len(text) > 2
             and not text[0].isdigit() and text != "._."]
    return sorted({*found, *_EXTRA_ABBREVIATIONS})


@spacy.registry.tokenizers("dealwatch.fast_tokenizer.v1")
def create_fast_tokenizer() -> Callable[[Language], FastTokenizer]:
    def make(nlp: Language) -> FastTokenizer:
        return FastTokenizer(nlp.vocab, default_abbreviations(nlp))

    return make


def use_fast_tokenizer(nlp: Language) -> None:
    """Replace the pipeline's tokenizer (the rule tokenizer costs more than all tagging rules)."""
    nlp.tokenizer = create_fast_tokenizer()(nlp)
    logger.debug("tokenizer: dealwatch.fast_tokenizer.v1")
