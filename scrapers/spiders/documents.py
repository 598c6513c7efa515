"""Safe parsing of feeds and sitemaps into listed entries (links, titles, dates), without a crawl."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from pipeline.dates import listed_datetime, normalise_date

logger = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS1_NS = "http://purl.org/rss/1.0/"
DC_NS = "http://purl.org/dc/elements/1.1/"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


class MalformedDocument(Exception):
    """A feed or sitemap that cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One link a feed, sitemap or listing page offers, with what it says about the target."""

    url: str
    title: str | None = None
    date: str | None = None
    role: str = "article"  # article | sitemap (a child of a sitemap index)


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD or network fetches, lxml's default size limits: a feed can
    # neither read local files (XXE) nor blow up memory (billion laughs).
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, remove_comments=True, remove_pis=True, recover=False)


def parse_xml(body: bytes) -> etree._Element:
    """Parse an XML document strictly; raise MalformedDocument with the parser's reason."""
    body = body.lstrip()
    if not body:
        raise MalformedDocument("empty document")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedDocument(f"not well-formed XML: {exc}") from None
    if root is None:
        raise MalformedDocument("empty document")
    return root


def newest_first(entries: list[Listed]) -> list[Listed]:
    """Entries with a date, newest first, then the undated ones (unreadable dates among them)
    in document order.

    A max_items cap then keeps the latest news; sitemaps often list the oldest first.
    """
    dated: list[tuple[datetime, Listed]] = []
    undated: list[Listed] = []
    for entry in entries:
        when = listed_datetime(entry.date)
        if when is None:
            undated.append(entry)
        else:
            dated.append((when, entry))
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in dated] + undated


def _absolute(base: str, link: str) -> str | None:
    """The link made absolute against base; None for a link no URL can be made of (a broken
    IPv6 literal): that entry is left out, the rest of the document is read."""
    try:
        return urljoin(base, link)
    except ValueError:
        logger.debug("skipping unreadable link %r (base %s)", link, base)
        return None


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    text = " ".join("".join(el.itertext()).split())
    return text or None


def _child(el: etree._Element, name: str, ns: str | None = None) -> etree._Element | None:
    """First child with this local name (and namespace, when given)."""
    for child in el:
        if _local(child) == name and (ns is None or etree.QName(child).namespace == ns):
            return child
    return None


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in el if _local(child) == name]


def _describe(root: etree._Element) -> str:
    return f"<{_local(root)}>" + (f" in namespace {etree.QName(root).namespace}"
                                   if etree.QName(root).namespace else "")


def parse_rss(body: bytes, base_url: str) -> list[Listed]:
    """Items of an RSS 2.0 (or RSS 1.0 / RDF) feed."""
    root = parse_xml(body)
    if _local(root) == "rss":
        channel = _child(root, "channel")
        if channel is None:
            raise MalformedDocument("RSS feed without a <channel>")
        items = _children(channel, "item")
    elif root.tag == f"{{{RDF_NS}}}RDF":
        items = [el for el in root if el.tag == f"{{{RSS1_NS}}}item"]
    else:
        hint = '; set kind = "atom"' if root.tag == f"{{{ATOM_NS}}}feed" else ""
        raise MalformedDocument(f"expected an RSS feed, found {_describe(root)}{hint}")
    entries = []
    for item in items:
        link = _text(_child(item, "link"))
        if not link:
            guid = _child(item, "guid")
            if guid is not None and guid.get("isPermaLink", "true") != "false":
                link = _text(guid)
        url = _absolute(base_url, link) if link else None
        if not url:
            continue
        date = _text(_child(item, "pubDate")) or _text(_child(item, "date", DC_NS))
        entries.append(Listed(url, _text(_child(item, "title")), normalise_date(date)))
    return entries


def _atom_link(entry: etree._Element) -> str | None:
    best: str | None = None
    for link in _children(entry, "link"):
        href = link.get("href")
        if not href or link.get("rel", "alternate") != "alternate":
            continue
        if link.get("type", "text/html") in ("text/html", "application/xhtml+xml"):
            return href
        best = best or href
    return best


def _atom_text(el: etree._Element | None) -> str | None:
    """An Atom text construct: type="html" holds escaped markup, whose text is wanted."""
    text = _text(el)
    if el is not None and text and el.get("type") == "html":
        with contextlib.suppress(etree.ParserError, ValueError):
            text = " ".join(lxml.html.fragment_fromstring(text, create_parent="div")
                            .text_content().split()) or None
    return text


def parse_atom(body: bytes, base_url: str) -> list[Listed]:
    """Entries of an Atom feed; relative links resolve against xml:base, then the feed URL."""
    root = parse_xml(body)
    if root.tag != f"{{{ATOM_NS}}}feed":
        hint = '; set kind = "rss"' if _local(root) in ("rss", "RDF") else ""
        raise MalformedDocument(f"expected an Atom feed, found {_describe(root)}{hint}")
    # An unreadable xml:base is ignored: links then resolve against the next base out.
    feed_base = _absolute(base_url, root.get(XML_BASE, "")) or base_url
    entries = []
    for entry in _children(root, "entry"):
        href = _atom_link(entry)
        entry_base = _absolute(feed_base, entry.get(XML_BASE, "")) or feed_base
        url = _absolute(entry_base, href) if href else None
        if not url:
            continue
        date = _text(_child(entry, "published")) or _text(_child(entry, "updated"))
        entries.append(Listed(url, _atom_text(_child(entry, "title")), normalise_date(date)))
    return entries


def parse_sitemap(body: bytes, base_url: str) -> list[Listed]:
    """URLs of a sitemap (role article) or the child sitemaps of a sitemap index (role sitemap).

    Google News fields (news:title, news:publication_date) are used when present; otherwise the
    date is <lastmod>. Namespaces are matched loosely: many sitemaps get them wrong.
    """
    root = parse_xml(body)
    kind = _local(root)
    if kind == "sitemapindex":
        children = []
        for sitemap in _children(root, "sitemap"):
            loc = _text(_child(sitemap, "loc"))
            url = _absolute(base_url, loc) if loc else None
            if url:
                children.append(Listed(url, None, normalise_date(_text(_child(sitemap, "lastmod"))),
                                       role="sitemap"))
        return children
    if kind != "urlset":
        raise MalformedDocument(f"expected a sitemap <urlset> or <sitemapindex>, found {_describe(root)}")
    entries = []
    for url in _children(root, "url"):
        loc = _text(_child(url, "loc"))
        link = _absolute(base_url, loc) if loc else None
        if not link:
            continue
        title = date = None
        news = _child(url, "news", NEWS_NS)
        if news is not None:
            title = _text(_child(news, "title", NEWS_NS))
            date = _text(_child(news, "publication_date", NEWS_NS))
        date = date or _text(_child(url, "lastmod"))
        entries.append(Listed(link, title, normalise_date(date)))
    return entries
