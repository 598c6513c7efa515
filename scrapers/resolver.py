"""DNS resolver that refuses non-public answers at connection time (SSRF, DNS rebinding)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from scrapy.resolver import CachingHostnameResolver
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from zope.interface import implementer

from scrapers.failures import REFUSED_HOSTS
from scrapers.middlewares import address_refusal

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@implementer(IResolutionReceiver)
class _PublicOnlyReceiver:
    """Holds the addresses back until resolution completes, then passes them on only when
    none of them is refused: a name with one private answer among public ones is refused."""

    def __init__(self, receiver: Any, host: str, allow_private: bool):
        self.receiver = receiver  # an IResolutionReceiver
        self.host = host
        self.allow_private = allow_private
        self.addresses: list[IAddress] = []

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        reason = None
        for address in self.addresses:
            host = str(getattr(address, "host", ""))
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                reason = f"unreadable address {host!r}"
            else:
                reason = address_refusal(ip, self.allow_private)
            if reason:
                break
        if reason:
            REFUSED_HOSTS[self.host] = f"{self.host} resolves to {reason}"
            logger.warning("refused to connect: %s", REFUSED_HOSTS[self.host])
        else:
            for address in self.addresses:
                self.receiver.addressResolved(address)
        # With no address passed on, the connection fails as a DNS lookup error.
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class PublicOnlyResolver(CachingHostnameResolver):
    """Scrapy's caching resolver (IPv4 and IPv6), checking every answer with address_refusal.

    Twisted's HostnameEndpoint connects to exactly the addresses a resolver hands it (address
    literals in URLs included), so what is checked here is what is connected to: a DNS
    answer that changes after PrivateNetworkMiddleware looked (rebinding) and redirects to
    other hosts are covered. Loopback and private addresses pass when
    DEALWATCH_ALLOW_PRIVATE_NETWORKS is true; metadata and link-local addresses never do.
    """

    def __init__(self, reactor: Any, cache_size: int, allow_private: bool = False):
        super().__init__(reactor, cache_size)
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> Self:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache_size, settings.getbool("DEALWATCH_ALLOW_PRIVATE_NETWORKS"))

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,
                        portNumber: int = 0, addressTypes: Sequence[type[IAddress]] | None = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        guarded: Any = _PublicOnlyReceiver(resolutionReceiver, hostName, self.allow_private)
        return super().resolveHostName(guarded, hostName, portNumber, addressTypes,
                                       transportSemantics)
