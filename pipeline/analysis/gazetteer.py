"""Country gazetteer: ISO 3166 names from pycountry plus hand-made short forms, demonyms and places."""

from __future__ import annotations

import gettext
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import pycountry

logger = logging.getLogger(__name__)

EXTRA_DATA = "countries_extra.json"
BLOCK_LABEL = "_NOT_COUNTRY"  # ruler label for look-alikes ("Latin America"); removed after tagging
# Possessive endings as the tokenizer splits them off ("Kenya's", "Kenya’s", "Kenyaʼs", "Philippines'").
POSSESSIVES = ("'s", "’s", "ʼs", "'", "’")


@dataclass(frozen=True)
class Gazetteer:
    """Case-sensitive surface forms of countries (names, short forms, demonyms) and places."""

    countries: Mapping[str, str]  # surface form -> ISO 3166-1 alpha-2
    demonyms: frozenset[str]
    not_countries: tuple[str, ...]
    cities: Mapping[str, str]  # major cities (and their all-caps dateline form) -> alpha-2
    subdivisions: Mapping[str, str]  # unambiguous first-level subdivisions -> alpha-2
    # subdivisions whose names are also words or surnames ("Mendoza", "Delta"): places only
    # next to a word that says so ("the province of Mendoza", "Delta State")
    cued_subdivisions: Mapping[str, str] = field(default_factory=dict)

    def country_code(self, text: str) -> str | None:
        """The ISO code a written country name, short form or demonym stands for."""
        return self.countries.get(_bare(text))

    def place_code(self, text: str) -> str | None:
        """The country of a city or first-level subdivision ("Kuching", "Jujuy"), if unambiguous."""
        bare = _bare(text)
        return self.cities.get(bare) or self.subdivisions.get(bare) or self.cued_subdivisions.get(bare)

    def is_demonym(self, text: str) -> bool:
        return _bare(text) in self.demonyms

    def ruler_patterns(self) -> list[dict[str, Any]]:
        """EntityRuler phrase patterns: label COUNTRY with the ISO code as id, plus look-alike blocks."""
        patterns: list[dict[str, Any]] = [
            {"label": "COUNTRY", "pattern": text, "id": code} for text, code in self.countries.items()
        ]
        patterns += [{"label": BLOCK_LABEL, "pattern": text} for text in self.not_countries]
        return patterns

    def place_patterns(self) -> Iterator[tuple[str, str, str]]:
        """(surface text, kind, ISO code) for the place matcher."""
        for text, code in self.cities.items():
            yield text, "city", code
        for text, code in self.subdivisions.items():
            yield text, "subdivision", code
        for text, code in self.cued_subdivisions.items():
            yield text, "cued_subdivision", code


def _bare(text: str) -> str:
    text = text.strip()
    for possessive in POSSESSIVES:
        if text.endswith(possessive) and len(text) > len(possessive) + 1:
            text = text[: -len(possessive)]
            break
    if text.startswith(("the ", "The ")):
        text = text[4:]
    return text


def _read_extra() -> dict[str, Any]:
    source = resources.files("pipeline.analysis.data").joinpath(EXTRA_DATA)
    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return data


def _pycountry_names(country: Any) -> Iterator[str]:
    for attr in ("name", "official_name", "common_name"):
        value = getattr(country, attr, None)
        # "Korea, Republic of" and "Saint Martin (French part)" are catalogue forms nobody writes;
        # the hand-made table supplies the forms the press uses.
        if value and "," not in value and "(" not in value:
            yield _bare(value)


def _subdivision_countries(extra: dict[str, Any]) -> dict[str, set[str]]:
    """First-level subdivision names (catalogue affixes removed) -> the countries that have one."""
    affixes: list[str] = extra["subdivision_affixes"]
    seen: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        if sub.parent_code is not None:
            continue
        name = sub.name
        for affix in affixes:
            name = name.replace(affix, "")
        name = name.strip()
        if len(name) < 3 or "/" in name or "," in name or "(" in name:
            continue
        seen.setdefault(name, set()).add(sub.country_code)
    for code, names in extra["subdivision_extra"].items():
        for name in names:
            seen.setdefault(name, set()).add(code)
    return seen


def _subdivisions(extra: dict[str, Any], taken: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Subdivisions that place a counterpart on their own, and those that need a cue word."""
    stop = set(extra["subdivision_stopwords"])
    cue_only = set(extra.get("subdivision_cue_only", []))
    seen = _subdivision_countries(extra)
    # A name two countries share ("Punjab") places nothing; one that is also a country, a city or
    # a common word places nothing on its own.
    unique = {name: next(iter(codes)) for name, codes in sorted(seen.items()) if len(codes) == 1}
    plain = {name: code for name, code in unique.items()
             if len(name) >= 4 and name not in stop and name not in cue_only and name not in taken}
    cued = {name: code for name, code in unique.items() if name in cue_only}
    return plain, cued


def _translated_names(lang: str) -> Iterator[tuple[str, str]]:
    """(name, ISO code) of every country in the language, from pycountry's own translations of
    the ISO 3166 names (its gettext catalogues): "Camerún", "Moçambique", "Côte d'Ivoire"."""
    translation = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang],
                                      fallback=True)
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                translated = translation.gettext(value)
                if translated != value and "," not in translated and "(" not in translated:
                    yield _bare(translated), country.alpha_2


def load_gazetteer(lang: str = "en", aliases: Mapping[str, Iterable[str]] | None = None,
                   demonyms: Mapping[str, Iterable[str]] | None = None,
                   cities: Mapping[str, Iterable[str]] | None = None) -> Gazetteer:
    """The gazetteer of a language: the English one, plus for another language the country
    names in it (pycountry's translations) and its press's own forms, demonyms and city names
    (the language's patterns/<lang>/countries.toml)."""
    if lang == "en" and not aliases and not demonyms and not cities:
        return _english_gazetteer()
    return _language_gazetteer(lang, _frozen(aliases), _frozen(demonyms), _frozen(cities))


def _frozen(table: Mapping[str, Iterable[str]] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((code, tuple(forms)) for code, forms in (table or {}).items()))


@lru_cache(maxsize=8)
def _language_gazetteer(lang: str, aliases: tuple[tuple[str, tuple[str, ...]], ...],
                        demonyms: tuple[tuple[str, tuple[str, ...]], ...],
                        cities: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Gazetteer:
    english = _english_gazetteer()
    countries = dict(english.countries)
    for text, code in _translated_names(lang):
        countries.setdefault(text, code)
    for code, forms in aliases:
        for text in forms:
            countries[_bare(text)] = code
    own_demonyms = set(english.demonyms)
    for code, forms in demonyms:
        for text in forms:
            countries.setdefault(text, code)
            own_demonyms.add(text)
    own_cities = dict(english.cities)
    for code, forms in cities:
        for text in forms:
            own_cities[text] = code
            if " " not in text and len(text) > 3:
                own_cities[text.upper()] = code  # datelines: "LUANDA –"
    return Gazetteer(countries=countries, demonyms=frozenset(own_demonyms),
                     not_countries=english.not_countries, cities=own_cities,
                     subdivisions=english.subdivisions,
                     cued_subdivisions=english.cued_subdivisions)


@lru_cache(maxsize=1)
def _english_gazetteer() -> Gazetteer:
    """Build the English gazetteer once per process (pycountry + the package's hand-made table)."""
    extra = _read_extra()
    countries: dict[str, str] = {}
    for country in pycountry.countries:
        for text in _pycountry_names(country):
            countries.setdefault(text, country.alpha_2)
    for code, forms in extra["aliases"].items():
        for text in forms:
            countries[_bare(text)] = code  # the hand-made table wins over catalogue names
    demonyms: set[str] = set()
    for code, forms in extra["demonyms"].items():
        for text in forms:
            countries.setdefault(text, code)
            demonyms.add(text)
    cities: dict[str, str] = {}
    for code, forms in extra["cities"].items():
        for text in forms:
            cities[text] = code
            if " " not in text and len(text) > 3:
                cities[text.upper()] = code  # datelines: "LAHORE -", "KUCHING:"
    subdivisions, cued = _subdivisions(extra, set(countries) | set(cities))
    logger.debug("gazetteer: %d country forms, %d cities, %d subdivisions (%d with a cue word)",
                 len(countries), len(cities), len(subdivisions), len(cued))
    return Gazetteer(countries=countries, demonyms=frozenset(demonyms),
                     not_countries=tuple(extra["not_countries"]), cities=cities,
                     subdivisions=subdivisions, cued_subdivisions=cued)
