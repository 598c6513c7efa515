"""A source's crawl progress as the crawl subprocess reports it: one JSON line on stdout each.

    {"progress": {"source": "example-rss", "requests": 12, "articles": 8, "articles_new": 6,
                  "errors": 1, "requests_left": 9988, "seconds_left": 7140.0,
                  "finished": false, "finish_reason": null}}

Needs no Scrapy: the process that launched the crawl reads these lines (pipeline.ingest.crawl).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

MAX_LINE = 4096  # a progress line is a few hundred characters; a longer one is something else


def _fits(annotation: Any, value: Any) -> bool:
    """Whether a value read from a line has its field's type (a bool is no count, NaN no time)."""
    if value is None:
        return "None" in str(annotation)
    if isinstance(value, bool):
        return "bool" in str(annotation)
    if isinstance(value, int):
        return "int" in str(annotation) or "float" in str(annotation)
    if isinstance(value, float):
        return "float" in str(annotation) and math.isfinite(value)
    return isinstance(value, str) and "str" in str(annotation)


@dataclass(frozen=True)
class SourceProgress:
    """How far one source's crawl has got; the budget is the run's, shared by every source."""

    source: str
    requests: int = 0  # HTTP requests sent (robots.txt and retries included)
    articles: int = 0  # article pages fetched
    articles_new: int = 0  # of which not stored before
    errors: int = 0  # failed fetches (deliberate skips left out), pages not stored, spider errors
    requests_left: int | None = None  # of the run's request budget (None: no limit)
    seconds_left: float | None = None  # of the run's time budget (None: no limit)
    finished: bool = False
    finish_reason: str | None = None  # Scrapy's: finished, budget_exhausted, shutdown, ...

    def to_line(self) -> str:
        return json.dumps({"progress": asdict(self)}, sort_keys=True)

    @classmethod
    def from_line(cls, line: str) -> SourceProgress | None:
        """The progress a line reports; None for any other line (the report, a stray print)."""
        line = line.strip()
        if not line.startswith('{"progress"') or len(line) > MAX_LINE:
            return None
        try:
            data = json.loads(line).get("progress")
        except (ValueError, RecursionError, AttributeError):  # not JSON, too deep, too big a number
            return None
        if not isinstance(data, dict) or not isinstance(data.get("source"), str):
            return None
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if not all(_fits(known[k], v) for k, v in values.items()):
            return None
        return cls(**values)


def progress_of(source: str, stats: dict[str, Any], requests_left: int | None = None,
                seconds_left: float | None = None, finish_reason: str | None = None
                ) -> SourceProgress:
    """A source's progress from its crawler's stats (the keys scrapers.run reports from)."""
    def count(key: str) -> int:
        return int(stats.get(key, 0) or 0)

    return SourceProgress(
        source=source,
        requests=count("downloader/request_count"),
        articles=count("dealwatch/articles_ok"),
        articles_new=count("dealwatch/articles_new"),
        errors=(count("dealwatch/entry_errors") + count("dealwatch/article_failures")
                + count("dealwatch/errors/store") + count("spider_exceptions/count")),
        requests_left=requests_left,
        seconds_left=None if seconds_left is None else float(round(seconds_left)),
        finished=finish_reason is not None,
        finish_reason=finish_reason,
    )
