"""Filter and sort values as people type them (CLI options, the web's query strings): read once,
and a value that cannot match is refused with the valid ones named, never an empty list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from models.config import WatchlistEntry
from models.errors import DealwatchError


class FilterError(DealwatchError):
    """A filter or sort value that names nothing; the message says what would."""


def vendor_names(watchlist: Iterable[WatchlistEntry]) -> dict[str, str]:
    """Each watchlist vendor's id, name and aliases, casefolded → its id (the first vendor
    listed keeps a name two share)."""
    ids: dict[str, str] = {}
    for entry in watchlist:
        if entry.type == "vendor":
            for name in (entry.id, entry.name, *entry.aliases):
                ids.setdefault(name.casefold(), entry.id)
    return ids


def vendor_id(value: str, watchlist: Iterable[WatchlistEntry]) -> str:
    """A watchlist vendor's id from its id in any case, its name or an alias ("Huawei")."""
    ids = vendor_names(watchlist)
    found = ids.get(value.strip().casefold())
    if found is None:
        raise FilterError(f"{value!r} is no watchlist vendor; the vendor ids: "
                          + ", ".join(sorted(set(ids.values()))))
    return found


def country_code(value: str) -> str:
    """An ISO 3166 alpha-2 code, in any case; a country's name or alpha-3 code is an error that
    gives its alpha-2 code."""
    import pycountry  # loaded for this filter only

    text = value.strip()
    if len(text) == 2 and pycountry.countries.get(alpha_2=text.upper()):
        return text.upper()
    problem = f"{value!r} is no ISO 3166 alpha-2 country code"
    try:
        found = [pycountry.countries.lookup(text)]
    except LookupError:
        try:
            found = pycountry.countries.search_fuzzy(text)[:3] if len(text) > 2 else []
        except LookupError:
            found = []
    if not found:
        raise FilterError(f"{problem} (two letters, such as KE for Kenya)")
    names = [f"{c.alpha_2} ({getattr(c, 'common_name', None) or c.name})" for c in found]
    raise FilterError(f"{problem}; did you mean " + " or ".join(names) + "?")


def one_of(value: str, valid: Sequence[str], what: str) -> str:
    """The value when it is one of `valid` (a deal type, a stage, a sort key); else an error
    listing them. what: the thing named ("stage", "sort key")."""
    if value in valid:
        return value
    raise FilterError(f"{value!r} is no {what}: use one of {', '.join(valid)}")


def year(value: str) -> int:
    """A year of four digits."""
    text = value.strip()
    if len(text) == 4 and text.isascii() and text.isdigit():
        return int(text)
    raise FilterError(f"{value!r} is no year: four digits, such as 2025")
