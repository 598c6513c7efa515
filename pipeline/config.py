"""Load and validate a config directory; a file it lacks falls back to the shipped default."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from models.config import Rules, Settings, Source, Sources, WatchlistEntry
from models.errors import DealwatchError
from pipeline.jsonl import read_jsonl

SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
CONFIG_FILES = ("settings.toml", "sources.toml", "rules.toml")


class ConfigError(DealwatchError):
    """A config file is missing, unreadable or invalid; the message names file, field, problem."""


@dataclass(frozen=True)
class Config:
    settings: Settings
    sources: list[Source]
    watchlist: list[WatchlistEntry]
    rules: Rules
    directory: Path
    files: dict[str, Path]  # which file each part was read from

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
        raise ConfigError(f"{where}: {_location(err['loc'])}: {msg}{more}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


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
            seen[entry.id] = where
            entries.append(entry)
    return entries


def load_config(directory: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate every file of a config directory (raises ConfigError)."""
    base = config_dir_from_env(directory)
    if not base.is_dir():
        raise ConfigError(f"{base}: config directory not found")
    files = {name: _pick(base, name) for name in CONFIG_FILES}
    settings = _validate(Settings, _read_toml(files["settings.toml"]), str(files["settings.toml"]))
    sources = _validate(Sources, _read_toml(files["sources.toml"]), str(files["sources.toml"]))
    rules = _validate(Rules, _read_toml(files["rules.toml"]), str(files["rules.toml"]))
    wl_files = watchlist_files(base)
    if not wl_files:
        raise ConfigError(f"{base / 'watchlist'}: no watchlist *.jsonl files")
    watchlist = read_watchlist(wl_files)
    if not any(e.type == "vendor" for e in watchlist):
        raise ConfigError(f"{base / 'watchlist'}: the watchlist names no vendor")
    return Config(settings=settings, sources=sources.source, watchlist=watchlist, rules=rules,
                  directory=base, files=files)


def resolve_db_path(option: str | os.PathLike[str] | None, settings: Settings | None = None) -> Path:
    """--db beats DEALWATCH_DB beats settings.toml's database.path."""
    if option:
        return Path(option)
    env = os.environ.get("DEALWATCH_DB")
    if env:
        return Path(env)
    return Path(settings.database.path if settings else "data/dealwatch.db")
