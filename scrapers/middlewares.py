"""Downloader middleware that keeps crawls off loopback, private, link-local and metadata hosts."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Self

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.threads import deferToThread

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateNetworkRefused(IgnoreRequest):
    """A request was refused because its host is not on the public internet."""


def is_public_address(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only.

    `is_global` is false for loopback, RFC 1918, link-local (which holds the cloud metadata
    address 169.254.169.254), carrier-grade NAT, documentation and reserved ranges; IPv4-mapped
    IPv6 addresses are judged by the IPv4 address they carry.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class PrivateNetworkMiddleware:
    """Refuses requests to hosts that are or resolve to non-public addresses.

    Off (NotConfigured) when DEALWATCH_ALLOW_PRIVATE_NETWORKS is true. Redirects come back
    through the scheduler as new requests, so a redirect to a private host is refused too.
    The check resolves the name before the download handler resolves it again, so a DNS answer
    that changes in between (rebinding) is not caught yet.
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        # Resolved addresses per host for the whole crawl; None: the name does not resolve.
        self._addresses: dict[str, list[str] | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if crawler.settings.getbool("DEALWATCH_ALLOW_PRIVATE_NETWORKS"):
            # Without a message: Scrapy would log one warning per crawler for a chosen setting.
            raise NotConfigured
        return cls(crawler)

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
            addresses = await self._lookup(host, port)
        if addresses is None:
            # Let the download fail with its own DNS error, which is recorded as such.
            return
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address.split("%", 1)[0])):
                stats = self.crawler.stats
                if stats is not None:
                    stats.inc_value("dealwatch/private_network_refused")
                raise PrivateNetworkRefused(
                    f"{host} resolves to non-public address {address} "
                    "(set crawl.allow_private_networks = true to allow)"
                )

    async def _lookup(self, host: str, port: int) -> list[str] | None:
        if host not in self._addresses:
            try:
                # getaddrinfo blocks; run it in the reactor's thread pool.
                found = await maybe_deferred_to_future(deferToThread(_resolve, host, port))
            except OSError as exc:
                logger.debug("cannot resolve %s: %s", host, exc)
                found = None
            self._addresses[host] = found
        return self._addresses[host]
