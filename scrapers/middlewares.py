"""Downloader middlewares: private-network refusal, conditional GET, retries with backoff, redirect policy
(and the duplicate filter that lets redirect hops reach it)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from w3lib.url import canonicalize_url

from pipeline.dates import retry_after_seconds
from pipeline.urls import canonical_url
from scrapers.failures import (
    AlreadyStored,
    OffsiteRedirect,
    PrivateNetworkRefused,
    RedirectLoop,
    UnreadableRedirect,
    describe_failure,
)
from scrapers.stats import inc_stat

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from pipeline.storage import Store
    from scrapers.budget import RunBudget

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata and host-agent endpoints. They hand out credentials to whoever asks
# from inside the machine, so no setting ever lets a crawl reach them. Most sit in the
# link-local ranges (refused as a whole); these are the ones that do not, plus the well-known
# link-local ones named for the error message.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure WireServer
    "192.0.0.192",  # Oracle Cloud
))
# IPv6 forms that carry an IPv4 address in their last 32 bits: a packet to one of them reaches
# (or is translated to) that IPv4 host, so they are judged by it. IPv4-compatible (::a.b.c.d,
# deprecated, RFC 4291), IPv4-translated (::ffff:0:a.b.c.d, RFC 2765) and NAT64 with the
# well-known prefix (RFC 6052). IPv4-mapped and 6to4 have their own properties in ipaddress.
_EMBEDDING_PREFIXES = (
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated"),
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
)
# Local-use NAT64 (RFC 8215): the operator picks the prefix length, so where the IPv4 address
# sits is not known from outside; the block is local by definition and refused as non-public.
# Its /96 reading is still checked, so a metadata address in it is named as such.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# Global unicast: the only IPv6 block a public news site can be in.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_LOW32 = 0xFFFFFFFF
# Entry documents (feeds, sitemaps, listings) are fetched conditionally; articles are not.
ENTRY_ROLES = frozenset({"feed", "sitemap", "listing"})


def requested_url(request: Request) -> str:
    """The URL first asked for, before any redirect."""
    return str(request.meta.get("redirect_urls", [request.url])[0])


def _embedded_ipv4(ip: IPAddress) -> tuple[IPAddress, str | None]:
    """(the IPv4 address an IPv6 address stands for, the name of its form), else (ip, None).

    Mapped, compatible, translated, NAT64 (well-known and local-use, /96 format) and 6to4.
    `::` and `::1` are IPv6's own unspecified and loopback addresses, not compatible forms.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip, None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.is_unspecified or ip.is_loopback:
        return ip, None
    for network, form in (*_EMBEDDING_PREFIXES, (_LOCAL_NAT64, "local-use NAT64")):
        if ip in network:
            return ipaddress.IPv4Address(int(ip) & _LOW32), form
    return ip, None


def is_public_address(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only.

    `is_global` is false for loopback, RFC 1918, link-local (which holds the cloud metadata
    address 169.254.169.254), carrier-grade NAT, documentation and reserved ranges; IPv6
    addresses that carry an IPv4 address (mapped, compatible, translated, NAT64, 6to4) are
    judged by that address. An IPv6 address must also be global unicast (2000::/3): Python
    3.11's `is_global` passes the reserved ::/8 and deprecated site-local fec0::/10.
    """
    if ip in _LOCAL_NAT64:
        return False
    inner, _ = _embedded_ipv4(ip)
    if isinstance(inner, ipaddress.IPv6Address) and inner not in _GLOBAL_UNICAST:
        return False
    return inner.is_global and not inner.is_multicast and inner not in METADATA_ADDRESSES


def address_refusal(ip: IPAddress, allow_private: bool = False) -> str | None:
    """Why a crawl may not connect to this address, or None when it may.

    With allow_private (crawl.allow_private_networks: tests, the demo, intranet sources)
    loopback and private addresses are fine; metadata, link-local, deprecated site-local,
    unspecified and multicast addresses are refused regardless, in whatever IPv6 form they come.
    """
    inner, form = _embedded_ipv4(ip)
    about = f"{form} form of {inner}; " if form else ""
    never = f"{about}refused whatever crawl.allow_private_networks says"
    if ip in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
        return f"cloud metadata address {ip} ({never})"
    if inner.is_link_local:
        return f"link-local address {ip} ({never})"
    if isinstance(inner, ipaddress.IPv6Address) and inner.is_site_local:
        return f"deprecated site-local address {ip} ({never})"
    if inner.is_unspecified or inner.is_multicast:
        return f"unspecified or multicast address {ip} ({never})"
    if allow_private or is_public_address(ip):
        return None
    return f"non-public address {ip} ({about}set crawl.allow_private_networks = true to allow)"


def _resolve(host: str, port: int) -> list[str] | None:
    """The addresses a host name resolves to; None when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a label IDNA cannot encode
        logger.debug("cannot resolve %s: %s", host, exc)
        return None
    return sorted({str(info[4][0]) for info in infos})


# Host name -> its lookup, for the whole process: every crawler (source) of a run shares it,
# and requests that ask while the lookup is on its way wait for that one lookup.
_LOOKUPS: dict[str, Deferred[list[str] | None]] = {}


async def lookup(host: str, port: int) -> list[str] | None:
    """The addresses of a host name (None: it does not resolve), looked up once per process."""
    shared = _LOOKUPS.get(host)
    if shared is None:
        # getaddrinfo blocks; run it in the reactor's thread pool.
        shared = _LOOKUPS[host] = deferToThread(_resolve, host, port)
    # A Deferred hands its result down its callback chain: each waiter gets a Deferred of its
    # own, and the shared one keeps the result for those who come later.
    mine: Deferred[list[str] | None] = Deferred()

    def relay(result: Any) -> Any:
        mine.callback(result)
        return result

    shared.addBoth(relay)
    return await maybe_deferred_to_future(mine)


class PrivateNetworkMiddleware:
    """Refuses requests to hosts that are or resolve to addresses a crawl may not reach.

    This is the early check: a refused host is not even asked for its robots.txt, and the
    error names the address. Redirects come back through the scheduler as new requests, so a
    redirect to a refused host is caught here too. The decisive check is the one at
    connection time (scrapers.resolver.PublicOnlyResolver), on the very addresses connected
    to, so a DNS answer that changes in between (rebinding) does not get through either.
    """

    def __init__(self, crawler: Crawler, allow_private: bool):
        self.crawler = crawler
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, crawler.settings.getbool("DEALWATCH_ALLOW_PRIVATE_NETWORKS"))

    async def process_request(self, request: Request) -> None:
        parsed = urlparse_cached(request)
        host = parsed.hostname
        if not host or parsed.scheme not in ("http", "https"):
            return
        addresses: list[str] | None
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            addresses = await lookup(host, port)
        if addresses is None:
            # Let the download fail with its own DNS error, which is recorded as such.
            return
        for address in addresses:
            reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]),
                                     self.allow_private)
            if reason:
                inc_stat(self.crawler, "dealwatch/private_network_refused")
                raise PrivateNetworkRefused(f"{host} resolves to {reason}")


def has_validators(stored: dict[str, Any] | None) -> bool:
    """True when a stored page (store.pages.validators_of) has an ETag or Last-Modified to send."""
    return bool(stored and (stored.get("etag") or stored.get("last_modified")))


class ConditionalGetMiddleware:
    """Sends If-None-Match / If-Modified-Since for entry documents stored before.

    What the last good fetch said (store.pages.validators_of) goes into the request's meta as
    meta["dealwatch"]["stored"], so that the spider can tell a 304 or an unchanged body from
    news, and a failed fetch from a page it must not overwrite. The store is the spider's
    (`store`, handed to every spider by scrapers.run); off without one.
    """

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        store = getattr(crawler.spider, "store", None)
        if store is None:
            raise NotConfigured("the spider has no store")
        return cls(store)

    def process_request(self, request: Request) -> None:
        meta = request.meta.get("dealwatch")
        # Looked up once per entry: retries and redirects carry the meta (and headers) along.
        if not meta or meta.get("role") not in ENTRY_ROLES or "stored" in meta:
            return
        stored = self.store.pages.validators_of(requested_url(request))
        meta["stored"] = stored
        if not has_validators(stored):
            return
        assert stored is not None
        if stored.get("etag"):
            request.headers["If-None-Match"] = stored["etag"]
        if stored.get("last_modified"):
            request.headers["If-Modified-Since"] = stored["last_modified"]


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware, waiting before each retry: Retry-After when the server sends
    one (up to DEALWATCH_RETRY_AFTER_MAX; a longer wait is not retried in this run), else an
    exponential backoff (DEALWATCH_RETRY_BACKOFF_BASE, doubled each time, at most
    DEALWATCH_RETRY_BACKOFF_MAX).

    The wait is asynchronous: the reactor keeps serving other requests meanwhile. A wait ends
    early when the run's budget runs out, and the request then fails as it stands.
    """

    # The wait is sliced so that a budget running out is noticed promptly.
    WAIT_SLICE = 0.25

    def __init__(self, settings: BaseSettings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("DEALWATCH_RETRY_BACKOFF_BASE", 2.0)
        self.backoff_max = settings.getfloat("DEALWATCH_RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("DEALWATCH_RETRY_AFTER_MAX", 120.0)
        self.budget: RunBudget | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        middleware.budget = getattr(crawler.spider, "budget", None)
        return middleware

    def backoff(self, request: Request) -> float:
        """The wait before retrying a request that failed (retry_times) times already."""
        attempt = int(request.meta.get("retry_times", 0))
        return float(min(self.backoff_max, self.backoff_base * 2 ** attempt))

    async def process_response(self, request: Request, response: Response  # type: ignore[override]
                               ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = self.backoff(request)
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        if asked is not None:
            if asked > self.retry_after_max:
                inc_stat(self.crawler, "dealwatch/retry_after_too_long")
                logger.warning("%s asks to retry after %.0f s (more than %.0f s): not retried "
                               "in this run", request.url, asked, self.retry_after_max)
                return response
            wait = max(wait, asked)
        retry = self._retry(request, response_status_message(response.status))
        if retry is None or not await self._wait(wait):
            return response
        return retry

    async def process_exception(self, request: Request, exception: Exception  # type: ignore[override]
                                ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry"):
            return None
        if describe_failure(exception, request)[0] == "private_network":
            return None  # refused on purpose, not a passing DNS failure
        wait = self.backoff(request)
        retry = self._retry(request, exception)
        if retry is None or not await self._wait(wait):
            return None
        return retry

    async def _wait(self, seconds: float) -> bool:
        """Sleep without blocking the reactor; False when the run's budget ran out meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.budget is not None and self.budget.exhausted:
                return False
            await sleep(min(self.WAIT_SLICE, left))
        return self.budget is None or not self.budget.exhausted


class RedirectHopsDupeFilter(RFPDupeFilter):
    """Scrapy's duplicate filter, except that it never drops a redirect hop.

    A redirect that loops (A -> A, A -> B -> A, a meta refresh to itself) asks again for a
    URL the filter has seen, and a dropped request gets neither callback nor errback: the
    page would leave no row and no error. Let through, the hop reaches RedirectLoopMiddleware,
    which fails it with its reason. Hops are still remembered, so a later link to a URL that
    a redirect has reached is dropped as before.
    """

    def request_seen(self, request: Request) -> bool:
        return super().request_seen(request) and not request.meta.get("redirect_urls")


@contextmanager
def _readable_target(response: Response) -> Iterator[None]:
    """Scrapy's redirect middlewares raise a bare ValueError when the target is no URL
    (`Location: http://[::1`): that becomes "bad_url" with the target, in one line."""
    try:
        yield
    except ValueError as exc:
        location = response.headers.get("Location")
        where = f"redirected to {location.decode('latin-1')}" if location else "meta refresh"
        raise UnreadableRedirect(f"{where}: {exc}") from None


class StatusRedirectMiddleware(RedirectMiddleware):
    """Scrapy's RedirectMiddleware (3xx + Location); an unreadable target is "bad_url"."""

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        with _readable_target(response):
            return super().process_response(request, response)


class MetaRefreshRedirectMiddleware(MetaRefreshMiddleware):
    """Scrapy's MetaRefreshMiddleware; an unreadable target is "bad_url"."""

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        with _readable_target(response):
            return super().process_response(request, response)


class RedirectLoopMiddleware:
    """Fails a redirect that leads back to a URL of its own chain as "redirect_loop", naming
    the chain, before the looping request is sent. URLs compare as Scrapy's duplicate filter
    compares them (canonicalised, without fragment). A chain that does not loop ends at
    max_redirects as "too_many_redirects"."""

    def process_request(self, request: Request) -> None:
        chain = request.meta.get("redirect_urls")
        if not chain:
            return
        target = canonicalize_url(request.url)
        if any(canonicalize_url(url) == target for url in chain):
            raise RedirectLoop(" -> ".join([*chain, request.url]))


class KnownRedirectMiddleware:
    """Checks where a listed link redirects to against the spider's link policy, before the
    target's body is downloaded.

    A listed link (an article, a child sitemap) that redirects off the source's allowed domains
    (those it names; a listing's own host when it names none) is dropped as "offsite": a
    listing's links and a feed's items must not bring in pages from elsewhere through a
    redirect. An article that redirects to an article stored already or fetched in this run is
    dropped as "known": aggregator links (click trackers, link shorteners, feed proxies) only
    reveal the publisher's URL by redirecting. A new target is claimed, so that no other source
    of the run fetches it again. Entry URLs (the source's own) may redirect anywhere.
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        meta = request.meta.get("dealwatch")
        if not meta or not request.meta.get("redirect_urls"):
            return
        # Listed links: articles, and child sitemaps (which, unlike entry URLs, have a referrer).
        if meta.get("role") != "article" and meta.get("referrer") is None:
            return
        policy = getattr(self.crawler.spider, "policy", None)
        if policy is None:
            return
        if policy.offsite(request.url):
            raise OffsiteRedirect(f"redirected to {request.url}, outside "
                                  f"{', '.join(policy.allowed_domains)}")
        if meta.get("role") != "article":
            return
        target = canonical_url(request.url)
        # What this very request claimed: its own link, earlier hops (a retry comes back here).
        mine: set[str] = meta.setdefault("claimed", set())
        if meta.get("canonical"):
            mine.add(meta["canonical"])
        if target in mine:
            return
        if not policy.claim_redirect(target):
            raise AlreadyStored(f"redirected to {request.url}, stored already or fetched in this run")
        mine.add(target)
