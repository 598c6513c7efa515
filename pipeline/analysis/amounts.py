"""Money and dates: amounts and the years a sentence dates its news to, as span groups.

The `dealwatch_amounts_v1` component writes two span groups, sentence by sentence:
- `doc.spans[AMOUNTS_KEY]`: one span per amount ("$48 million", "US$75m", "Sh17.5 billion"),
  labelled with the ISO 4217 code its symbol stands for in `rules.toml`'s `currencies` (the
  detector may read a shared symbol otherwise: "Sh" is KES, but UGX in Uganda); its `kb_id_` is
  the value, and `span._.dw_amount` the typed `Amount(value, symbol)`.
- `doc.spans[DATES_KEY]`: one span per year, labelled "year" where the words around it date the
  news ("in 2019", "March 2024", "… in 2023."), "model_year" where the statistical model's DATE
  entity holds one ("the 2019 agreement"); `kb_id_` and `span._.dw_year` hold the year. A year
  that opens or closes a period ("since 2006", "by 2027") is none.

How amounts and years are written (scale words, months, range words) is the language's
`patterns/<lang>/grammar.toml`. Show them with `displacy.render(doc, style="span",
options={"spans_key": AMOUNTS_KEY})`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from models.config import DateWords, Grammar
from pipeline.config import Config, LanguagePack

AMOUNTS_KEY = "dealwatch_amounts"  # span group: label = ISO code, kb_id_ = value
DATES_KEY = "dealwatch_dates"  # span group: label "year" or "model_year", kb_id_ = the year
YEAR, MODEL_YEAR = "year", "model_year"

_DIGIT = re.compile(r"\d")
_FOUR_DIGITS = re.compile(r"\d\d\d\d")
# a number as written with a decimal point ("1,200.5") or a decimal comma ("1.200,5", "1 200,5")
_NUMBERS = {
    ".": r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)",
    ",": r"(?P<num>\d{1,3}(?:[. \u00a0\u202f]\d{3})+(?:,\d+)?|\d+(?:,\d+)?)",
}
_YEAR_NUMBER = r"19[89]\d|20[0-4]\d"
_YEAR_IN_DATE = re.compile(rf"\b({_YEAR_NUMBER})\b")


class Amount(NamedTuple):
    value: float
    symbol: str  # as written: "Sh", "US$", "dollars"


if not Span.has_extension("dw_amount"):
    Span.set_extension("dw_amount", default=None)
if not Span.has_extension("dw_year"):
    Span.set_extension("dw_year", default=None)


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def amount_pattern(currencies: Mapping[str, list[str]], scales: Iterable[str], decimal: str = ".",
                   joiners: Iterable[str] = ()) -> tuple[re.Pattern[str], dict[str, str]]:
    """The amount regex and the currency of each symbol (and of each code itself). `decimal`
    is the language's decimal mark; `joiners` stand between a number and its currency word
    ("50 millones de dólares", "20 milliards de FCFA")."""
    currency_of = {symbol: code for code, symbols in currencies.items() for symbol in symbols}
    currency_of.update({code: code for code in currencies})
    prefixes = [s for s in currency_of if s != s.lower() or not s.isalpha()]
    words = [s for s in currency_of if s.isalpha() or " " in s]
    number = _NUMBERS[decimal]
    scale = rf"(?:\s?-?\s?(?P<scale>{_alternation(scales)})\b)"
    joiner = rf"(?:(?:{_alternation(joiners)})\s?)?" if joiners else ""
    # A one-letter symbol ("P20-billion", "R2bn") counts only with a scale word after it, so
    # that "Ascend P6" is no amount.
    pattern = re.compile(
        rf"(?<![\w$])(?P<pre>{_alternation(p for p in prefixes if len(p) > 1 or not p.isalpha())})"
        rf"\s?{number}{scale}?"
        rf"|(?<![\w$])(?P<pre1>{_alternation(p for p in prefixes if len(p) == 1 and p.isalpha())})"
        rf"{number.replace('num', 'num1')}{scale.replace('scale', 'scale1')}"
        rf"|(?<![\w.,]){number.replace('num', 'num2')}{scale.replace('scale', 'scale2')}?"
        rf"\s+{joiner}(?P<post>{_alternation(words)})\b")
    return pattern, currency_of


def year_pattern(dates: DateWords) -> re.Pattern[str]:
    """A four-digit year after a month or a word that dates ("in 2019"), not the first of a
    period ("2015 to 2022"); or one before punctuation (checked against range words on use)."""
    joiners = _alternation(dates.range_joiners)
    return re.compile(
        rf"(?:(?:{_alternation(dates.months)})\.?\s+(?:\d{{1,2}},?\s+)?"
        rf"|\b(?:{_alternation(dates.year_leads)})\s+)(?P<a>{_YEAR_NUMBER})\b"
        rf"(?!\s*(?:{joiners})\s*(?:19|20)\d\d)"
        rf"|\b(?P<b>{_YEAR_NUMBER})(?=\s*[,.;:)\]]|\s*$)")


@Language.factory("dealwatch_amounts_v1", default_config={"currencies": {}, "grammar": {},
                                                           "labels": ["VENDOR"]})
def make_amount_finder(nlp: Language, name: str, currencies: dict[str, list[str]],
                       grammar: dict[str, Any], labels: list[str]) -> AmountFinder:
    return AmountFinder(currencies, Grammar.model_validate(grammar), labels)


class AmountFinder:
    """Writes doc.spans[AMOUNTS_KEY] and doc.spans[DATES_KEY] on docs that name an entity of
    `labels` (a watchlist vendor; empty: every doc)."""

    def __init__(self, currencies: Mapping[str, list[str]], grammar: Grammar,
                 labels: Iterable[str] = ("VENDOR",)) -> None:
        self.labels = frozenset(labels)
        self.scales = grammar.amounts.scales
        self.decimal = grammar.amounts.decimal
        self.amounts, self.currency_of = amount_pattern(
            currencies, self.scales, self.decimal, grammar.amounts.currency_joiners)
        self.years = year_pattern(grammar.dates)
        self.range_words = frozenset(grammar.dates.range_words)
        joiners = _alternation(grammar.dates.range_joiners)
        self.period = re.compile(rf"\d\s*(?:{joiners})\s*(?:19|20)\d\d")

    def __call__(self, doc: Doc) -> Doc:
        amounts: list[Span] = []
        dates: list[Span] = []
        if not self.labels or any(ent.label_ in self.labels for ent in doc.ents):
            text = doc.text
            for sent in doc.sents:
                sentence = text[sent.start_char:sent.end_char]
                if _DIGIT.search(sentence):  # the amount pattern is slow to fail
                    amounts += self._amounts(doc, sentence, sent.start_char)
                if _FOUR_DIGITS.search(sentence):
                    dates += self._years(doc, sentence, sent.start_char)
            dates += self._model_years(doc)
        doc.spans[AMOUNTS_KEY] = amounts
        doc.spans[DATES_KEY] = sorted(dates, key=lambda s: (s.start, s.end, s.label_))
        return doc

    def _amounts(self, doc: Doc, sentence: str, offset: int) -> list[Span]:
        spans = []
        for m in self.amounts.finditer(sentence):
            amount = self.amount(m)
            if amount is None:
                continue
            code = self.currency_of.get(amount.symbol) or self.currency_of.get(amount.symbol.lower())
            span = doc.char_span(offset + m.start(), offset + m.end(), label=code or amount.symbol,
                                 kb_id=_plain(amount.value), alignment_mode="expand")
            if span is not None:
                span._.dw_amount = amount
                spans.append(span)
        return spans

    def amount(self, m: re.Match[str]) -> Amount | None:
        """Value and currency symbol of one amount ("Sh17.5 billion": 17.5e9, "Sh")."""
        num = m.group("num") or m.group("num1") or m.group("num2")
        scale = m.group("scale") or m.group("scale1") or m.group("scale2")
        symbol = m.group("pre") or m.group("pre1") or m.group("post") or ""
        # Decimal arithmetic: "4.1 billion" is 4100000000, not 4099999999.9999995.
        if self.decimal == ",":  # "1.200,5" and "1 200,5" are 1200.5
            num = re.sub(r"[. \u00a0\u202f]", "", num).replace(",", ".")
        else:
            num = num.replace(",", "")
        value = float(Decimal(num) * Decimal(self.scales.get(" ".join((scale or "").split()), 1)))
        if value < 1000 and not scale:
            return None  # "$5" in a sentence about deals is a price, not a deal value
        return Amount(value, symbol)

    def _years(self, doc: Doc, sentence: str, offset: int) -> list[Span]:
        """Years the sentence dates its news to: "in 2019", "March 2024", "2023." — not the
        start or end of a period ("since 2006", "from 2015 until 2022", "by 2027")."""
        spans = []
        for m in self.years.finditer(sentence):
            group = "a" if m.group("a") else "b"
            if group == "b":
                before = sentence[max(m.start() - 12, 0):m.start()].split()
                if before and before[-1].lower().strip("(") in self.range_words:
                    continue
            span = doc.char_span(offset + m.start(group), offset + m.end(group), label=YEAR,
                                 kb_id=m.group(group), alignment_mode="expand")
            if span is not None:
                span._.dw_year = int(m.group(group))
                spans.append(span)
        return spans

    def _model_years(self, doc: Doc) -> list[Span]:
        """Years in the DATEs the statistical model found ("the 2019 agreement")."""
        spans = []
        for ent in doc.ents:
            if ent.label_ != "DATE":
                continue
            before = doc[ent.start - 1].lower_ if ent.start > 0 else ""
            if before in self.range_words or ent.text.split()[0].lower() in self.range_words:
                continue
            m = _YEAR_IN_DATE.search(ent.text)
            if m and not self.period.search(ent.text):
                span = Span(doc, ent.start, ent.end, label=MODEL_YEAR, kb_id=m.group(1))
                span._.dw_year = int(m.group(1))
                spans.append(span)
        return spans


def _plain(value: float) -> str:
    """A value as a plain number: 48000000, 17500000000, 1.5."""
    return format(Decimal(repr(value)).normalize(), "f")


def add_amount_finder(nlp: Language, config: Config, after: str = "cues",
                      pack: LanguagePack | None = None) -> None:
    """Add the amounts-and-dates component after the cue matcher (for the language of `pack`,
    default English)."""
    pack = pack or config.pack("en")
    nlp.add_pipe("dealwatch_amounts_v1", name="amounts", after=after, config={
        "currencies": pack.rules.currencies,
        "grammar": pack.grammar.model_dump(mode="json"),
    })
