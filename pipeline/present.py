"""How candidates and deals read to people, the same in the terminal and in the web UI."""

from __future__ import annotations

from functools import cache


def money(value: float | None, currency: str | None = None, short: bool = False) -> str:
    """'USD 1.5 billion' (or 'USD 1.5 bn' with short); '' when there is no value."""
    if value is None:
        return ""
    amount = float(value)
    for factor, word, abbr in ((1e9, "billion", "bn"), (1e6, "million", "m")):
        if amount >= factor:
            return f"{currency or ''} {amount / factor:g} {abbr if short else word}".strip()
    return f"{currency or ''} {amount:,.0f}".strip()


@cache
def country_names() -> dict[str, str]:
    """ISO alpha-2 code → the English name a reader knows ("Bolivia", not "Bolivia,
    Plurinational State of")."""
    import pycountry

    return {c.alpha_2: str(getattr(c, "common_name", None) or c.name) for c in pycountry.countries}


def country_name(code: str | None) -> str | None:
    return country_names().get(code.upper()) if code else None


def _squash(text: str) -> str:
    return " ".join(text.split())


def evidence_span(text: str, sentence: str, start: int | None, end: int | None
                  ) -> tuple[int, int] | None:
    """Where the evidence sentence lies in the article text: the stored offsets when they hold
    the sentence, else the first place the sentence occurs, else nowhere."""
    if start is not None and end is not None and 0 <= start < end <= len(text) \
            and _squash(text[start:end]) == _squash(sentence):
        return start, end
    found = text.find(sentence) if sentence else -1
    return (found, found + len(sentence)) if found >= 0 else None
