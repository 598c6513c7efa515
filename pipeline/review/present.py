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


def language_name(code: str | None) -> str | None:
    """ISO 639-1 code → the language's English name ("pt" → "Portuguese")."""
    import pycountry

    found = pycountry.languages.get(alpha_2=code.lower()) if code else None
    return str(found.name) if found else None


def language_note(code: str | None, declared: str | None = None, source: str | None = None
                  ) -> str:
    """What a reviewer reads about an article's language (code, the language its page declared,
    and where the code came from): "es (Spanish)", and where it came from when that matters
    ("…, identified; the page declared en")."""
    name = language_name(code)
    note = f"{code} ({name})" if code and name else (code or "unknown")
    if source == "identified" and declared and declared != code:
        note += f", identified; the page declared {declared}"
    elif source == "identified":
        note += ", identified (the page declared none)"
    elif source == "declared":
        note += ", as the page declared (the text alone could not tell)"
    return note


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
