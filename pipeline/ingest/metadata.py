"""An article page's metadata from the tags publishers put there for search engines and sharing.

Title, author, publication date, site name, canonical link and language come from Open Graph,
`article:*` and Dublin Core meta tags, JSON-LD and `<time>` elements — one pass over the head of
an already parsed page, several times cheaper than a general-purpose metadata extractor; the
date falls back to htmldate's quick search only when the page declares none.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from lxml.html import HtmlElement

from pipeline.language import normalise_language

logger = logging.getLogger(__name__)

_ISO_DATE = re.compile(r"((?:19|20)\d\d)-(\d\d)-(\d\d)")
_SLASH_DATE = re.compile(r"((?:19|20)\d\d)/(\d\d)/(\d\d)")
_WS = re.compile(r"\s+")
_TITLE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]{2,60}$")
_BYLINE_PREFIX = re.compile(r"^(by|par|por|von|di|de)\s+", re.IGNORECASE)
_BYLINE_TAIL = re.compile(r"\s+(@\w+|\w{3} \d{1,2}, \d{4}|\d{1,2} \w+ \d{4}).*$")

TITLE_KEYS = ("og:title", "twitter:title", "dc.title", "title", "sailthru.title")
AUTHOR_KEYS = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator",
               "byl", "citation_author")
DATE_KEYS = ("article:published_time", "og:article:published_time", "datepublished",
             "parsely-pub-date", "sailthru.date", "dc.date.issued", "dc.date", "dcterms.date",
             "pubdate", "publishdate", "publish-date", "date", "article.published",
             "og:published_time", "citation_publication_date", "article:modified_time")
SITE_KEYS = ("og:site_name", "application-name", "twitter:site", "publisher")


@dataclass(frozen=True, slots=True)
class PageMetadata:
    title: str | None = None
    author: str | None = None
    published: str | None = None  # YYYY-MM-DD
    site: str | None = None
    canonical: str | None = None
    language: str | None = None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _WS.sub(" ", value).strip()
    return text or None


def _meta(tree: HtmlElement) -> dict[str, str]:
    """Meta tags by lower-cased name / property / itemprop; the first of each wins."""
    found: dict[str, str] = {}
    for el in tree.iter("meta"):
        key = el.get("property") or el.get("name") or el.get("itemprop")
        content = el.get("content")
        if key and content and content.strip():
            found.setdefault(key.strip().lower(), content.strip())
    return found


def _json_ld(tree: HtmlElement) -> list[dict[str, Any]]:
    """JSON-LD objects of the page, @graph members flattened."""
    out: list[dict[str, Any]] = []
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except (ValueError, RecursionError):  # broken, or nested to absurd depth
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                out.append(item)
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(graph)
    return out


def _name(value: Any) -> str | None:
    """The name in a JSON-LD author/publisher value (a string, an object or a list of them)."""
    if isinstance(value, list):
        names = [n for v in value if (n := _name(v))]
        return "; ".join(names) or None
    if isinstance(value, dict):
        return _clean(value.get("name"))
    return _clean(value)


def _date(value: str | None) -> str | None:
    if not value:
        return None
    match = _ISO_DATE.search(value) or _SLASH_DATE.search(value)
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day).isoformat()
    except ValueError:  # no such day (2024-02-31)
        return None


def _article_ld(objects: list[dict[str, Any]]) -> dict[str, Any]:
    for obj in objects:
        kind = obj.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and ("Article" in k or k in {"Report", "BlogPosting"})
               for k in kinds):
            return obj
    return {}


def _byline(value: str | None) -> str | None:
    """A person's name from a byline: without "By", a handle or a date after it."""
    if not value:
        return None
    name = _BYLINE_TAIL.sub("", _BYLINE_PREFIX.sub("", value)).strip(" ,;|")
    return name or None


def _author(tree: HtmlElement, meta: dict[str, str], ld: dict[str, Any]) -> str | None:
    return _byline(_author_raw(tree, meta, ld))


def _author_raw(tree: HtmlElement, meta: dict[str, str], ld: dict[str, Any]) -> str | None:
    for key in AUTHOR_KEYS:
        value = _clean(meta.get(key))
        if value and not value.startswith(("http://", "https://")):
            return value
    name = _name(ld.get("author"))
    if name:
        return name
    for el in tree.xpath('//a[@rel="author"] | //*[@itemprop="author"]'):
        text = _clean(el.text_content())
        if text and len(text) <= 80:
            return text
    return None


def _published(tree: HtmlElement, meta: dict[str, str], ld: dict[str, Any]) -> str | None:
    for key in DATE_KEYS:
        date = _date(meta.get(key))
        if date:
            return date
    date = _date(_clean(ld.get("datePublished")) or _clean(ld.get("dateCreated")))
    if date:
        return date
    for el in tree.xpath("//time[@datetime]")[:3]:
        date = _date(el.get("datetime"))
        if date:
            return date
    try:
        from htmldate import find_date

        found = find_date(tree, extensive_search=False, original_date=True)
    except Exception:  # htmldate's own parsing problems must not lose the article
        logger.debug("htmldate failed", exc_info=True)
        return None
    return _date(found) if isinstance(found, str) else None


def _title(tree: HtmlElement, meta: dict[str, str], ld: dict[str, Any]) -> str | None:
    for key in TITLE_KEYS:
        value = _clean(meta.get(key))
        if value:
            return value
    value = _clean(ld.get("headline"))
    if value:
        return value
    titles = tree.xpath("//title")
    if titles:
        value = _clean(titles[0].text_content())
        if value:
            return _TITLE_SUFFIX.sub("", value) or value
    headings = tree.xpath("//h1")
    return _clean(headings[0].text_content()) if headings else None


def _without_site(title: str | None, site: str | None) -> str | None:
    """A title without the " | Site name" many pages append to it."""
    if title and site:
        for sep in (" | ", " - ", " – ", " — ", ": "):
            if title.endswith(sep + site) and len(title) > len(sep + site):
                return title[: -len(sep + site)].strip()
            if sep == ": " and title.startswith(site + sep):
                return title[len(site + sep):].strip()
    return title


def _site(meta: dict[str, str], ld_objects: list[dict[str, Any]], article: dict[str, Any],
          url: str) -> str | None:
    for key in SITE_KEYS:
        value = _clean(meta.get(key))
        if value and not value.startswith(("http://", "https://", "@")):
            return value
    name = _name(article.get("publisher"))
    if name:
        return name
    for obj in ld_objects:
        if obj.get("@type") in ("NewsMediaOrganization", "Organization", "WebSite"):
            name = _name(obj)
            if name:
                return name
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


def _language(tree: HtmlElement, meta: dict[str, str], headers: dict[str, str] | None
              ) -> str | None:
    """The first declared language tag that names a language, as ISO 639-1 ("pt-BR" → "pt");
    a template's "x-default" or "und" falls through to the next place."""
    for value in (tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang"),
                  meta.get("og:locale"), meta.get("content-language"), meta.get("language"),
                  (headers or {}).get("content-language")):
        if code := normalise_language(value):
            return code
    return None


def _canonical(tree: HtmlElement, meta: dict[str, str]) -> str | None:
    for el in tree.iter("link"):
        if "canonical" in (el.get("rel") or "").lower().split() and el.get("href"):
            return str(el.get("href")).strip()
    return _clean(meta.get("og:url"))


def page_metadata(tree: HtmlElement, url: str, headers: dict[str, str] | None = None
                  ) -> PageMetadata:
    """Metadata of a parsed page (read before the tree is handed on: extraction prunes it)."""
    meta = _meta(tree)
    ld_objects = _json_ld(tree)
    article = _article_ld(ld_objects)
    site = _site(meta, ld_objects, article, url)
    return PageMetadata(
        title=_without_site(_title(tree, meta, article), site),
        author=_author(tree, meta, article),
        published=_published(tree, meta, article),
        site=site,
        canonical=_canonical(tree, meta),
        language=_language(tree, meta, headers),
    )
