"""Reason codes the crawl reports for pages it skipped on purpose; run health reads them too.

Kept apart from scrapers.failures, which needs Scrapy, so that judging a run's health does not
load Scrapy.
"""

from __future__ import annotations

# Reason codes of deliberate skips, not signs of a broken source: the spider counts them apart
# from article failures, and run health leaves them out of a source's errors.
SKIP_CODES = frozenset({"robots", "not_html", "offsite"})
