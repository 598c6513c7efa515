"""Run health: which sources need a person's attention, judged from the recent runs' counters."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from models.registry import Run
from scrapers.reasons import SKIP_CODES


@dataclass
class SourceRun:
    """What one run did for one source: crawl and processing counters side by side."""

    run_id: int
    started_at: str
    requests: int = 0
    not_modified: int = 0
    articles_new: int = 0
    articles: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    not_article: int = 0
    blocked: int = 0
    failed: int = 0
    candidates_new: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    attention: str | None = None

    @property
    def processed(self) -> int:
        return self.articles + self.duplicates + self.not_article + self.blocked + self.failed

    @property
    def extraction_yield(self) -> float | None:
        """Share of the article pages processed that gave an article (None: nothing processed)."""
        return (self.articles + self.duplicates) / self.processed if self.processed else None

    @property
    def real_errors(self) -> Counter[str]:
        return Counter({k: v for k, v in self.errors.items() if k not in SKIP_CODES and v})


@dataclass
class Flag:
    source: str
    problem: str  # errors | no_new_articles | falling_yield | bot_walls
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "problem": self.problem, "detail": self.detail}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def crawl_counters(counters: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """A run's crawl counters per source id; None when the run did not crawl.

    Runs record them under "crawl"; a crawl that `python -m scrapers.run` recorded as its own
    run kept them under "sources" until that was made the same.
    """
    counters = counters or {}
    crawl = counters.get("crawl")
    if crawl is None:
        crawl = counters.get("sources")
    return crawl if isinstance(crawl, dict) else None


def source_runs(runs: list[Run]) -> dict[str, list[SourceRun]]:
    """Per source, its runs newest first (runs as `store.runs.recent()` gives them, newest first)."""
    out: dict[str, list[SourceRun]] = {}
    for run in runs:
        counters = run.counters or {}
        crawl = crawl_counters(counters) or {}
        process = (counters.get("process") or {}).get("sources") or {}
        attention = counters.get("attention") or {}
        for sid in sorted(set(crawl) | set(process)):
            c, p = crawl.get(sid) or {}, process.get(sid) or {}
            out.setdefault(sid, []).append(SourceRun(
                run_id=run.id, started_at=run.started_at,
                requests=_int(c.get("requests")), not_modified=_int(c.get("not_modified")),
                articles_new=_int(c.get("articles_new")), articles=_int(p.get("articles")),
                duplicates=_int(p.get("duplicates")),
                near_duplicates=_int(p.get("near_duplicates")),
                not_article=_int(p.get("not_article")), blocked=_int(p.get("blocked")),
                failed=_int(p.get("failed")), candidates_new=_int(p.get("candidates_new")),
                errors=Counter({k: _int(v) for k, v in (c.get("errors") or {}).items()}),
                attention=attention.get(sid),
            ))
    return out


def flags(runs: list[Run], stale_after_runs: int = 3, min_pages: int = 5
          ) -> list[Flag]:
    """Sources that need attention, from the runs newest first."""
    found: list[Flag] = []
    for sid, history in sorted(source_runs(runs).items()):
        last = history[0]
        if last.attention or last.real_errors:
            # The crawl's attention may name the error codes already ("...: http_404 x1").
            unnamed = {k: v for k, v in last.real_errors.items()
                       if not re.search(rf"\b{re.escape(k)}\b", last.attention or "")}
            reasons = ", ".join(f"{k} ×{v}" for k, v in sorted(unnamed.items()))
            detail = "; ".join(x for x in (last.attention, reasons) if x)
            found.append(Flag(sid, "errors", f"run {last.run_id}: {detail}"))
        recent = history[:stale_after_runs]
        if len(recent) == stale_after_runs and all(r.articles_new == 0 for r in recent):
            found.append(Flag(sid, "no_new_articles",
                              f"no new articles in the last {stale_after_runs} runs"))
        earlier = [y for r in history[1:6] if r.processed >= min_pages
                   and (y := r.extraction_yield) is not None]
        now = last.extraction_yield
        if now is not None and last.processed >= min_pages and earlier:
            before = median(earlier)
            if before >= 0.3 and now < 0.5 * before:
                found.append(Flag(sid, "falling_yield",
                                  f"extraction yield {now:.0%} in run {last.run_id}, "
                                  f"{before:.0%} before"))
        if last.blocked:
            found.append(Flag(sid, "bot_walls",
                              f"{last.blocked} of {last.processed} pages in run {last.run_id} "
                              "were bot checks or consent walls"))
    return found
