"""Why a request failed: the refusals our components raise, and the reason code of any failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message

from scrapers.budget import BudgetExhausted

if TYPE_CHECKING:
    from scrapy import Request

# Host name -> why the connection-time check (scrapers.resolver.PublicOnlyResolver) refused
# its addresses. The resolver is installed once per process, on the reactor, so this record is
# per process too: it tells a refused connection from a name that does not resolve.
REFUSED_HOSTS: dict[str, str] = {}


def refused_host_reason(host: str | None) -> str | None:
    """Why the resolver refused this host's addresses in this process, or None."""
    return REFUSED_HOSTS.get(host) if host else None


class PrivateNetworkRefused(IgnoreRequest):
    """A request was refused because its host is not on the public internet."""


class AlreadyStored(IgnoreRequest):
    """An article request redirected to a URL that is stored already (or fetched in this run)."""


class OffsiteRedirect(IgnoreRequest):
    """A listed link redirected to a host outside the source's allowed domains."""


class UnreadableRedirect(IgnoreRequest):
    """A redirect (HTTP or meta refresh) led to something that is no URL (`http://[::1`)."""


class RedirectLoop(IgnoreRequest):
    """A redirect (HTTP or meta refresh) led back to a URL of its own chain."""


def describe_failure(exc: BaseException, request: Request | None = None) -> tuple[str, str]:
    """(reason code, detail) for a failed request; the code keys the error counters.

    Given the request, a name that "does not resolve" because the resolver refused its
    addresses is told apart from a real DNS failure: it is private_network.
    """
    if isinstance(exc, HttpError) and exc.response is not None:
        return f"http_{exc.response.status}", response_status_message(exc.response.status)
    if isinstance(exc, PrivateNetworkRefused):
        return "private_network", str(exc)
    if isinstance(exc, BudgetExhausted):
        return "budget", str(exc)
    if isinstance(exc, AlreadyStored):
        return "known", str(exc)
    if isinstance(exc, OffsiteRedirect):
        return "offsite", str(exc)
    if isinstance(exc, RedirectLoop):
        return "redirect_loop", str(exc)
    if isinstance(exc, UnreadableRedirect):
        return "bad_url", str(exc)
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots.txt" in text:
            return "robots", "forbidden by robots.txt"
        if "max redirections" in text:
            return "too_many_redirects", text
        return "ignored", text or type(exc).__name__
    if isinstance(exc, CannotResolveHostError):
        refused = (refused_host_reason(urlparse_cached(request).hostname)
                   if request is not None else None)
        if refused:
            return "private_network", refused
        return "dns", str(exc) or "cannot resolve host"
    if isinstance(exc, DownloadTimeoutError):
        return "timeout", str(exc)
    if isinstance(exc, DownloadConnectionRefusedError):
        return "connection", str(exc) or "connection refused"
    if isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
        return "too_large", str(exc)
    if isinstance(exc, ResponseDataLossError):
        return "data_loss", str(exc)
    return "download", f"{type(exc).__name__}: {exc}"
