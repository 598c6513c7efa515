"""URL canonicalisation: one spelling per article URL, shared by the crawl, storage and dedup."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track where a reader came from; they never change the article.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid",
    "ocid", "cmpid", "cmp", "ito", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname",
    "ns_fee", "igshid", "share", "src", "ref", "ref_src", "ref_url", "smid", "sr_share",
    "via", "spm", "s_cid", "_ga", "_gl", "amp",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_AMP_PATH = re.compile(r"(/amp/?$|/amp(?=/)|\.amp(?=\.html?$|$)|/amp\.html$)", re.IGNORECASE)


def _is_tracking(name: str) -> bool:
    lower = name.lower()
    return lower in TRACKING_PARAMS or lower.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """One spelling per article URL.

    Lower-cases scheme and host, folds http/https and `www.`/`amp.`/`m.` hosts together, drops
    default ports, fragments, tracking parameters and AMP path variants, and sorts what is left
    of the query. Two URLs with the same canonical form are the same article. A URL that does
    not parse (a port out of range, a broken IPv6 host) stays as it is.
    """
    try:
        return _canonical(url.strip())
    except ValueError:
        return url.strip()


def _canonical(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    for prefix in ("www.", "amp.", "m."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
            break
    port = parts.port
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    path = _AMP_PATH.sub("", path) or "/"
    if path != "/" and path.endswith("/"):
        path = path.rstrip("/")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not _is_tracking(k))
    # http and https are one article: the canonical form always says https.
    return urlunsplit(("https", netloc, path, urlencode(query), ""))


def registered_domain(host: str) -> str:
    """A rough registrable domain (last two labels; three for common second-level suffixes)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in {"co", "com", "org", "net", "gov", "ac", "or", "ne"}:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def host_of(url: str | None) -> str | None:
    """The host a URL names, or None: scraped URLs can be malformed (`https://[bad/x`), and one
    of them must not break a page or an export that shows it."""
    try:
        return urlsplit(url or "").hostname
    except ValueError:
        return None


def scheme_of(url: str) -> str:
    """A URL's scheme, lower-cased; "" when it has none or cannot be parsed."""
    try:
        return urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(text: str) -> bool:
    """Whether `--db` names a PostgreSQL server (postgresql:// or postgres://) rather than a
    SQLite file."""
    return text.strip().lower().startswith(DATABASE_SCHEMES)
