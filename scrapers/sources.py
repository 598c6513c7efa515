"""Which sources a crawl covers, and the errors of a crawl that cannot start."""

from __future__ import annotations

from pathlib import Path

from models.config import Source
from models.errors import DealwatchError
from pipeline.config import Config, ConfigError


class CrawlError(DealwatchError):
    """A crawl could not be started or did not report; the message is one line."""


class UnknownSourceError(CrawlError):
    """A source id asked for is not in sources.toml."""


def select_sources(config: Config, source_ids: list[str] | None = None) -> list[Source]:
    """The sources a crawl covers: those named (enabled or not), else every enabled one."""
    if source_ids:
        try:
            return [config.source(source_id) for source_id in dict.fromkeys(source_ids)]
        except ConfigError as exc:
            raise UnknownSourceError(str(exc)) from None
    sources = config.enabled_sources()
    if not sources:
        raise CrawlError(no_enabled_sources(config))
    return sources


def no_enabled_sources(config: Config) -> str:
    """What to do, in one line ending with the sources.toml to edit: the one read, or the one
    the config directory lacks."""
    read = Path(config.files["sources.toml"])
    own = Path(config.directory) / "sources.toml"
    if read.resolve() != own.resolve():  # the config directory has none: the shipped list
        return (f"no enabled sources in {config.directory}, which has no sources.toml (every "
                f"source of the shipped list, {read}, is disabled): copy that list and set "
                f"enabled = true on the sources to crawl in {own}")
    return (f"no enabled sources in {config.directory}: to crawl a source, set enabled = true in "
            f"its [[source]] table (or name it with --source ID) in {read}")
