"""Load and validate a config directory; a file it lacks falls back to the shipped default."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from models.config import Grammar, Rules, Settings, Source, Sources, WatchlistEntry
from models.errors import DealwatchError
from pipeline.jsonl import read_jsonl

SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
CONFIG_FILES = ("settings.toml", "sources.toml", "rules.toml")


class ConfigError(DealwatchError):
    """A config file is missing, unreadable or invalid; the message names file, field, problem."""


# The sections of rules.toml that are words of a language. A language's patterns/<lang>/vocab.toml
# gives its own (the English ones live in rules.toml); the others (scoring, currency codes by
# country, domestic territories) hold for every language.
LANGUAGE_SECTIONS = ("triggers", "deal_types", "stages", "weak_stages", "counterparts",
                     "negative_contexts", "weak_negative_contexts", "non_party_markers", "hedges",
                     "concessives", "private_markers", "anaphora", "vendor_descriptors",
                     "aggregate", "currencies")
REQUIRED_VOCABULARY = ("triggers", "deal_types", "stages", "counterparts", "negative_contexts",
                       "aggregate")
BASE_LANGUAGE = "en"


@dataclass(frozen=True)
class LanguagePack:
    """What the analyser needs to read one language: its vocabularies (rules.toml's sections of
    words, from patterns/<lang>/vocab.toml), grammar, cue patterns and country demonyms."""

    lang: str
    rules: Rules
    grammar: Grammar
    cue_patterns: list[dict[str, Any]]
    demonyms: dict[str, list[str]]  # ISO alpha-2 -> demonym forms as written
    aliases: dict[str, list[str]]  # ISO alpha-2 -> other names the language's press uses
    files: dict[str, Path]  # which file each part was read from
    cities: dict[str, list[str]] = field(default_factory=dict)  # ISO alpha-2 -> city names


@dataclass(frozen=True)
class Config:
    settings: Settings
    sources: list[Source]
    watchlist: list[WatchlistEntry]
    rules: Rules
    directory: Path
    files: dict[str, Path]  # which file each part was read from
    grammar: Grammar  # the language's function words (patterns/<lang>/grammar.toml)
    cue_patterns: list[dict[str, Any]] = field(default_factory=list)  # pipeline.analysis.cues
    # every language with a pattern folder, English included (its rules are `rules` above)
    languages: dict[str, LanguagePack] = field(default_factory=dict)

    def pack(self, lang: str) -> LanguagePack:
        """The language's pack (ConfigError when there is no pattern folder for it)."""
        if lang == BASE_LANGUAGE and lang not in self.languages:  # a Config made by hand
            return LanguagePack(lang, self.rules, self.grammar, self.cue_patterns, {}, {},
                                dict(self.files))
        if lang not in self.languages:
            raise ConfigError(f"no pattern folder for language {lang!r} (have: "
                              f"{', '.join(sorted(self.languages)) or 'none'}); add "
                              f"patterns/{lang}/ to the config directory")
        return self.languages[lang]

    def source(self, source_id: str) -> Source:
        for src in self.sources:
            if src.id == source_id:
                return src
        known = ", ".join(s.id for s in self.sources) or "none"
        raise ConfigError(f"{self.files['sources.toml']}: no source with id {source_id!r} "
                          f"(known: {known})")

    def vendor_ids(self) -> set[str]:
        return {e.id for e in self.watchlist if e.type == "vendor"}

    def enabled_sources(self) -> list[Source]:
        return [s for s in self.sources if s.enabled]


def config_dir_from_env(value: str | os.PathLike[str] | None = None) -> Path:
    if value:
        return Path(value)
    env = os.environ.get("DEALWATCH_CONFIG")
    return Path(env) if env else SHIPPED_CONFIG_DIR


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "bool_type":
            msg += " (true or false, without quotes)"
        raise ConfigError(f"{where}: {_location(err['loc'])}: {msg}{more}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {_undecodable(data, exc)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def _undecodable(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8: line, the key on that line, the byte."""
    newline = b"\n"
    line_start = data.rfind(newline, 0, exc.start) + 1
    line_end = data.find(newline, exc.start)
    line = data[line_start:line_end if line_end >= 0 else len(data)]
    key = line.split(b"=", 1)[0].strip().decode("utf-8", "replace") if b"=" in line else ""
    where = f"line {data.count(newline, 0, exc.start) + 1}" + (f": {key}" if key else "")
    return (f"{where}: not UTF-8 (byte 0x{data[exc.start]:02x} at column "
            f"{exc.start - line_start + 1}); TOML files are UTF-8")


def _pick(directory: Path, name: str) -> Path:
    own = directory / name
    return own if own.exists() else SHIPPED_CONFIG_DIR / name


def watchlist_files(directory: Path) -> list[Path]:
    """Shipped watchlist files, each replaced by the config dir's file of the same name."""
    files: dict[str, Path] = {}
    for folder in (SHIPPED_CONFIG_DIR / "watchlist", directory / "watchlist"):
        if folder.is_dir():
            for path in sorted(folder.glob("*.jsonl")):
                files[path.name] = path
    return [files[name] for name in sorted(files)]


def read_watchlist(paths: list[Path], text: str | None = None) -> list[WatchlistEntry]:
    """Entries of watchlist files (with `text`: of one file about to be written, as that text)."""
    entries: list[WatchlistEntry] = []
    seen: dict[str, str] = {}
    for path in paths:
        for where, data in read_jsonl(path, ConfigError, comments=True, text=text):
            entry = _validate(WatchlistEntry, data, where)
            if entry.id in seen:
                raise ConfigError(f"{where}: id: {entry.id!r} is already defined at {seen[entry.id]}")
            for n, pattern in enumerate(entry.patterns):
                # as the analyser's EntityRuler will compile it (pipeline.analysis.tag.build_tagger)
                check_token_pattern(entry.id, pattern, f"{where}: {entry.id}: patterns[{n}]",
                                    WATCHLIST_UNSET)
            seen[entry.id] = where
            entries.append(entry)
    return entries


# Categories that cue patterns may use (pipeline.analysis.cues): those of rules.toml's vocabularies that
# patterns extend, and the classes only patterns make.
CUE_LABELS = frozenset(("approval", "cancel", "plan", "lose", "compare", "removal", "own_facility",
                        "T:verb", "T:weak_verb", "T:noun", "T:weak_noun", "neg", "weak_neg", "hedge",
                        "concessive"))


def cue_pattern_files(directory: Path, lang: str = "en") -> list[Path]:
    """A language's cue pattern files: the shipped ones, each replaced by the config dir's."""
    files: dict[str, Path] = {}
    for folder in (SHIPPED_CONFIG_DIR / "patterns" / lang, directory / "patterns" / lang):
        if folder.is_dir():
            for path in sorted(folder.glob("*.jsonl")):
                files[path.name] = path
    return [files[name] for name in sorted(files)]


def grammar_file(directory: Path, lang: str = "en") -> Path:
    """A language's grammar file: the config dir's, else the shipped one."""
    return _pick(directory, f"patterns/{lang}/grammar.toml")


def read_grammar(path: Path) -> Grammar:
    grammar: Grammar = _validate(Grammar, _read_toml(path), str(path))
    return grammar


@cache
def _pattern_matcher() -> Any:
    from spacy.matcher import Matcher  # spaCy loads slowly: only when patterns are read
    from spacy.vocab import Vocab

    return Matcher(Vocab(), validate=True)


# Token attributes that no component before the matcher sets (the statistical model is optional
# and its tagger reads only candidate sentences): spaCy refuses to match them (E155, E156).
# The watchlist is matched first of all, the cue patterns after the lemmatizer.
WATCHLIST_UNSET = ("LEMMA", "POS", "TAG", "MORPH", "DEP")
CUE_UNSET = ("POS", "TAG", "MORPH", "DEP")


def check_token_pattern(key: str, pattern: Any, where: str, unset: tuple[str, ...] = ()) -> None:
    """Compile a spaCy token pattern as the analyser's Matcher and EntityRuler will, with
    spaCy's own validation on top; ConfigError (one line, at `where`) when spaCy refuses it
    (E152 unknown attribute, a wrong value type, a broken REGEX) or it reads an attribute of
    `unset`, which nothing has set when it is matched, so that a bad pattern fails when the
    config is read and not in the middle of a run."""
    if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
        raise ConfigError(f"{where}: a non-empty list of token objects is required")
    for n, token in enumerate(pattern):
        for attr in token:
            if str(attr).upper() in unset:
                raise ConfigError(f"{where}: token {n}: {attr} is not set when this pattern is "
                                  f"matched (the optional model's tags are not there either); "
                                  f"match on {'LEMMA, ' if 'LEMMA' not in unset else ''}"
                                  f"LOWER or ORTH")
    matcher = _pattern_matcher()
    try:
        matcher.add(key, [pattern])
    except (ValueError, KeyError, TypeError, re.error, RecursionError) as exc:
        raise ConfigError(f"{where}: {_pattern_problem(exc)}") from None
    finally:
        if key in matcher:
            matcher.remove(key)


def _pattern_problem(exc: BaseException) -> str:
    """spaCy's pattern error in one line: its first finding, and how many more there are."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    findings = [line.removeprefix("- ") for line in lines if line.startswith("- [")]
    if not findings:
        return lines[0] if lines else type(exc).__name__
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"{findings[0]}{more}"


def read_cue_patterns(paths: list[Path]) -> list[dict[str, Any]]:
    """Cue patterns ({"label", "pattern"} a line, // comments), each checked by spaCy's own
    pattern validation, so that a bad pattern fails here and not in the middle of a run."""
    patterns: list[dict[str, Any]] = []
    for path in paths:
        for where, data in read_jsonl(path, ConfigError, comments=True):
            if not isinstance(data, dict) or set(data) != {"label", "pattern"}:
                raise ConfigError(f"{where}: a cue pattern is an object with exactly 'label' and 'pattern'")
            if data["label"] not in CUE_LABELS:
                raise ConfigError(f"{where}: label: {data['label']!r} is not one of "
                                  f"{', '.join(sorted(CUE_LABELS))}")
            check_token_pattern(data["label"], data["pattern"], f"{where}: pattern", CUE_UNSET)
            patterns.append({**data, "where": where})
    return patterns


def pattern_languages(directory: Path) -> list[str]:
    """Languages with a pattern folder (a grammar.toml in patterns/<lang>/), shipped or the
    config directory's own: adding a language is adding a folder."""
    found = set()
    for root in (SHIPPED_CONFIG_DIR / "patterns", directory / "patterns"):
        if root.is_dir():
            found |= {d.name for d in root.iterdir() if (d / "grammar.toml").is_file()}
    return sorted(found)


def _check_spacy_language(directory: Path, lang: str) -> None:
    """The analyser builds a language's chain on spaCy's blank pipeline for it and lemmatises
    with spaCy's lookup tables: a folder for a language spaCy lacks either of fails here, in
    one line, not at the first article in it."""
    import importlib.util
    from importlib import resources

    from spacy.util import find_matching_language, registry

    where = directory / "patterns" / lang
    # where spacy.util.get_lang_class looks, without importing the language: French's tokenizer
    # exceptions alone take seconds to compile, which every command reading the config would pay
    if (lang not in registry.languages and importlib.util.find_spec(f"spacy.lang.{lang}") is None
            and find_matching_language(lang) is None):
        raise ConfigError(f"{where}: spaCy has no language {lang!r} to tokenise it with")
    if importlib.util.find_spec("spacy_lookups_data") is None or not resources.files(
            "spacy_lookups_data").joinpath("data", f"{lang}_lemma_lookup.json.gz").is_file():
        raise ConfigError(f"{where}: spacy-lookups-data has no lemma table for {lang!r}, which the "
                          "cue matcher reads")


def read_language(directory: Path, lang: str, rules_data: dict[str, Any], rules: Rules,
                  rules_file: Path) -> LanguagePack:
    """A language's pack: English takes its words from rules.toml, any other language from its
    patterns/<lang>/vocab.toml, which gives every section of words it needs."""
    if not re.fullmatch(r"[a-z]{2}", lang):
        raise ConfigError(f"{directory / 'patterns' / lang}: a pattern folder is named by its "
                          "ISO 639-1 code (two lower-case letters)")
    _check_spacy_language(directory, lang)
    files = {"grammar.toml": grammar_file(directory, lang)}
    grammar = read_grammar(files["grammar.toml"])
    cue_patterns = read_cue_patterns(cue_pattern_files(directory, lang))
    if lang != BASE_LANGUAGE:
        files["vocab.toml"] = _pick(directory, f"patterns/{lang}/vocab.toml")
        vocab = _read_toml(files["vocab.toml"])
        unknown = sorted(set(vocab) - set(LANGUAGE_SECTIONS))
        if unknown:
            raise ConfigError(f"{files['vocab.toml']}: {unknown[0]}: unknown field (a vocabulary "
                              f"has {', '.join(LANGUAGE_SECTIONS)})")
        missing = [name for name in REQUIRED_VOCABULARY if name not in vocab]
        if missing:
            raise ConfigError(f"{files['vocab.toml']}: {missing[0]}: field required")
        for name in ("aggregate", "currencies"):  # merged with the base's before validation
            if name in vocab and not isinstance(vocab[name], dict):
                raise ConfigError(f"{files['vocab.toml']}: {name}: a table is required")
        for code, words in vocab.get("currencies", {}).items():
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise ConfigError(f"{files['vocab.toml']}: currencies.{code}: a list of strings "
                                  "is required")
        merged = {k: v for k, v in rules_data.items() if k not in LANGUAGE_SECTIONS}
        merged.update(vocab)
        # the base's count of many deals holds unless the language says otherwise
        merged["aggregate"] = {"many": rules.aggregate.many, **vocab["aggregate"]}
        # ISO codes and symbols ("US$", "€") are read in every language; words are added
        currencies = {code: list(words) for code, words in rules.currencies.items()}
        for code, words in vocab.get("currencies", {}).items():
            currencies[code] = [*currencies.get(code, []), *words]
        merged["currencies"] = currencies
        rules = _validate(Rules, merged, str(files["vocab.toml"]))
    else:
        files["rules.toml"] = rules_file
    tables: dict[str, dict[str, list[str]]] = {"aliases": {}, "demonyms": {}, "cities": {}}
    countries_file = _pick(directory, f"patterns/{lang}/countries.toml")
    if countries_file.exists():
        files["countries.toml"] = countries_file
        data = _read_toml(countries_file)
        for name in sorted(set(data) - set(tables)):
            raise ConfigError(f"{countries_file}: {name}: unknown table (aliases, demonyms, "
                              "cities)")
        for name, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{countries_file}: {name}: a table is required")
            for code, forms in table.items():
                if not re.fullmatch(r"[A-Z]{2}", code) or not isinstance(forms, list) or not all(
                        isinstance(f, str) and f.strip() for f in forms):
                    raise ConfigError(f"{countries_file}: {name}.{code}: an ISO alpha-2 code = "
                                      "a list of names as written")
                tables[name][code] = forms
    return LanguagePack(lang=lang, rules=rules, grammar=grammar, cue_patterns=cue_patterns,
                        demonyms=tables["demonyms"], aliases=tables["aliases"],
                        cities=tables["cities"], files=files)


def load_config(directory: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate every file of a config directory (raises ConfigError)."""
    base = config_dir_from_env(directory)
    if not base.is_dir():
        raise ConfigError(f"{base}: config directory not found")
    files = {name: _pick(base, name) for name in CONFIG_FILES}
    settings = _validate(Settings, _read_toml(files["settings.toml"]), str(files["settings.toml"]))
    sources = _validate(Sources, _read_toml(files["sources.toml"]), str(files["sources.toml"]))
    rules_data = _read_toml(files["rules.toml"])
    rules = _validate(Rules, rules_data, str(files["rules.toml"]))
    wl_files = watchlist_files(base)
    if not wl_files:
        raise ConfigError(f"{base / 'watchlist'}: no watchlist *.jsonl files")
    watchlist = read_watchlist(wl_files)
    if not any(e.type == "vendor" for e in watchlist):
        raise ConfigError(f"{base / 'watchlist'}: the watchlist names no vendor")
    languages = {lang: read_language(base, lang, rules_data, rules, files["rules.toml"])
                 for lang in pattern_languages(base)}
    if BASE_LANGUAGE not in languages:
        raise ConfigError(f"{base / 'patterns' / BASE_LANGUAGE}: no English pattern folder "
                          "(grammar.toml)")
    english = languages[BASE_LANGUAGE]
    files["grammar.toml"] = english.files["grammar.toml"]
    return Config(settings=settings, sources=sources.source, watchlist=watchlist, rules=rules,
                  directory=base, files=files, grammar=english.grammar,
                  cue_patterns=english.cue_patterns, languages=languages)


def db_location(option: str | os.PathLike[str] | None, settings: Settings | None = None) -> str:
    """Where the data lives, as given: --db beats DEALWATCH_DB beats settings.toml's
    database.path. A SQLite file's path, or a server's URL (postgresql://…), which a Path would
    mangle."""
    if option:
        return os.fspath(option)
    env = os.environ.get("DEALWATCH_DB")
    if env:
        return env
    return str(settings.database.path if settings else "data/dealwatch.db")
