"""Which sources a crawl covers, and the errors of a crawl that cannot start."""

from __future__ import annotations

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
        raise CrawlError(f"no enabled sources in {config.files['sources.toml']}")
    return sources
