"""Scrapy settings of the dealwatch crawler, and the mapping from settings.toml / sources.toml."""

from __future__ import annotations

from typing import Any

from models.config import CrawlSettings, Source

BOT_NAME = "dealwatch"

# Spiders are built per configured source by scrapers.run (their name is the source id), so
# there is nothing for Scrapy's spider loader to discover.
SPIDER_MODULES: list[str] = []

ITEM_PIPELINES = {"scrapers.pipelines.StorePipeline": 300}

DOWNLOADER_MIDDLEWARES = {
    # First: an entry request refused further down still knows it has a good copy stored.
    "scrapers.middlewares.ConditionalGetMiddleware": 40,
    # A redirect back into its own chain fails with its reason before it is sent again.
    "scrapers.middlewares.RedirectLoopMiddleware": 42,
    # A redirect to a stored article is dropped before it costs a DNS lookup or budget.
    "scrapers.middlewares.KnownRedirectMiddleware": 45,
    # Before RobotsTxtMiddleware (100): a refused host is not even asked for its robots.txt.
    "scrapers.middlewares.PrivateNetworkMiddleware": 50,
    # Every request that gets past the refusal costs budget, robots.txt and retries included.
    "scrapers.budget.BudgetMiddleware": 60,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scrapers.middlewares.BackoffRetryMiddleware": 550,
    # Scrapy's own, at their places, with a redirect to no URL recorded as bad_url.
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "scrapers.middlewares.MetaRefreshRedirectMiddleware": 580,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapers.middlewares.StatusRedirectMiddleware": 600,
}

# Each source's progress on stdout while it crawls, when DEALWATCH_PROGRESS_INTERVAL > 0.
EXTENSIONS = {"scrapers.extensions.ProgressReporter": 500}

# Redirect hops pass the duplicate filter, so that a loop is recorded, not dropped unseen.
DUPEFILTER_CLASS = "scrapers.middlewares.RedirectHopsDupeFilter"

# The check that counts: at connection time, on the addresses actually connected to.
TWISTED_DNS_RESOLVER = "scrapers.resolver.PublicOnlyResolver"
# Feeds may link anywhere and servers may redirect anywhere: only http(s) is ever fetched.
DOWNLOAD_HANDLERS = {"file": None, "data": None, "s3": None, "ftp": None}
# Through a proxy (http_proxy / https_proxy in the environment, or meta["proxy"]) Twisted
# connects to the proxy, so the resolver above would check only the proxy's address and the
# proxy would reach any host for us, private and metadata addresses included.
HTTPPROXY_ENABLED = False

# Settings read by our own components (values come from settings.toml via crawl_settings()).
# The store itself is no setting: scrapers.run hands its open Store to every spider.
DEALWATCH_RUN_ID = None  # runs.id the stored pages belong to
DEALWATCH_ALLOW_PRIVATE_NETWORKS = False
DEALWATCH_MAX_ITEMS = 200  # article requests per source per run
DEALWATCH_REFETCH_KNOWN = False
DEALWATCH_MAX_AGE_DAYS = 0  # listed articles dated longer ago are not fetched (0: no limit)
DEALWATCH_NEWS_SITEMAP_MAX_AGE_DAYS = 3
DEALWATCH_RETRY_BACKOFF_BASE = 2.0
DEALWATCH_RETRY_BACKOFF_MAX = 60.0
DEALWATCH_RETRY_AFTER_MAX = 120.0
# Seconds between a source's progress lines on stdout (0: none; `--progress-every` sets it).
DEALWATCH_PROGRESS_INTERVAL = 0.0
# A sitemap index can list thousands of monthly sitemaps; the newest few hold the news.
DEALWATCH_MAX_SITEMAPS = 20

ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
COOKIES_ENABLED = False  # news pages need no session; cookies would only track us
# Both open a listening socket inside the crawl process; a nightly job has no use for them.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# stdout carries the JSON lines of scrapers.run; the stats dump would only add noise to stderr.
STATS_DUMP = False
LOG_LEVEL = "WARNING"
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
}


def crawl_settings(crawl: CrawlSettings) -> dict[str, Any]:
    """Scrapy settings for the [crawl] table of settings.toml."""
    return {
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "CONCURRENT_REQUESTS": crawl.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_domain,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": crawl.autothrottle_target_concurrency,
        # Scrapy's default start delay (5 s) would make the first request slower than the
        # configured delay; AutoThrottle adapts from the configured delay instead.
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 0.5),
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        "DOWNLOAD_MAXSIZE": crawl.download_maxsize,
        "DOWNLOAD_WARNSIZE": crawl.download_warnsize,
        "RETRY_TIMES": crawl.retry_times,
        "REDIRECT_MAX_TIMES": crawl.max_redirects,
        "DEALWATCH_RETRY_BACKOFF_BASE": crawl.retry_backoff_base,
        "DEALWATCH_RETRY_BACKOFF_MAX": crawl.retry_backoff_max,
        "DEALWATCH_RETRY_AFTER_MAX": crawl.retry_after_max,
        "DEALWATCH_MAX_AGE_DAYS": crawl.max_age_days,
        "DEALWATCH_NEWS_SITEMAP_MAX_AGE_DAYS": crawl.news_sitemap_max_age_days,
        "LOG_LEVEL": crawl.log_level,
        "DEALWATCH_ALLOW_PRIVATE_NETWORKS": crawl.allow_private_networks,
        "DEALWATCH_MAX_ITEMS": crawl.max_items_per_source,
        "DEALWATCH_REFETCH_KNOWN": crawl.refetch_known_articles,
    }


def source_settings(source: Source, base_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Per-source overrides of crawl_settings(), applied to that source's own crawler.

    Every source runs in its own Crawler, hence its own downloader and download slots, so a
    plain DOWNLOAD_DELAY / CONCURRENT_REQUESTS_PER_DOMAIN / AUTOTHROTTLE_ENABLED set at
    spider priority governs exactly that source's requests and nothing else.
    """
    out: dict[str, Any] = {}
    if source.download_delay is not None:
        out["DOWNLOAD_DELAY"] = source.download_delay
        out["AUTOTHROTTLE_START_DELAY"] = max(source.download_delay, 0.5)
    if source.concurrent_requests_per_domain is not None:
        out["CONCURRENT_REQUESTS_PER_DOMAIN"] = source.concurrent_requests_per_domain
    if source.autothrottle is not None:
        out["AUTOTHROTTLE_ENABLED"] = source.autothrottle
    if source.max_items is not None:
        out["DEALWATCH_MAX_ITEMS"] = source.max_items
    own_headers = dict(source.headers)
    if source.language and not any(k.lower() == "accept-language" for k in own_headers):
        # Multilingual sites pick the edition (and the feed) by Accept-Language.
        own_headers["Accept-Language"] = source.language
    if own_headers:
        headers = dict(base_headers if base_headers is not None else DEFAULT_REQUEST_HEADERS)
        for name, value in own_headers.items():
            # robots.txt rules are matched against USER_AGENT, so a source's own user agent
            # goes there rather than into the default headers.
            if name.lower() == "user-agent":
                out["USER_AGENT"] = value
            else:
                headers[name] = value
        out["DEFAULT_REQUEST_HEADERS"] = headers
    return out
