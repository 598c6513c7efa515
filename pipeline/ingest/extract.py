"""Extract an article's main text and metadata from a page's HTML (trafilatura)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.utils import decode_file, load_html

from models.errors import DealwatchError
from models.records import Article, Passage
from pipeline.ingest.dedup import text_hash
from pipeline.ingest.metadata import PageMetadata, page_metadata
from pipeline.language import identify
from pipeline.text import clean_text
from pipeline.urls import canonical_url, registered_domain

logger = logging.getLogger(__name__)

_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
# A line of running text ends like a sentence (in any script) or is long; link lists, menus and
# teaser grids are mostly short lines that do not.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)]*\s*$")
PROSE_LINE_CHARS = 100


def prose_chars(text: str) -> int:
    """Characters in lines that read as running text rather than links or headings."""
    return sum(len(line) for line in (raw.strip() for raw in text.splitlines())
               if len(line) >= PROSE_LINE_CHARS or _SENTENCE_END.search(line))


# Pages served with 200 that hold no article because a bot check or a consent form stands in the
# way. Markers are matched in the first part of the page, lower-cased.
BOT_CHALLENGE_MARKERS = (
    ("cloudflare", re.compile(r"<title>\s*(just a moment|attention required)|cf-browser-verification|"
                              r"challenge-platform|cf_chl_|checking (if the site connection is secure|"
                              r"your browser before accessing)")),
    ("captcha", re.compile(r"captcha-delivery\.com|px-captcha|g-recaptcha|h-captcha|hcaptcha\.com|"
                           r"verify (that )?you are (a )?human|are you a robot")),
    ("access denied", re.compile(r"<title>\s*access denied|incapsula incident id|"
                                 r"request unsuccessful\. incapsula|you don't have permission to access")),
    ("javascript required", re.compile(r"enable javascript and cookies to continue|"
                                       r"please enable (javascript|js) (and|to)")),
)
CONSENT_MARKERS = re.compile(
    r"consent\.google\.|before you continue to|guce\.yahoo\.com|consent\.yahoo\.com|"
    r"we value your privacy|cookie consent|manage (your )?(cookie )?(preferences|consent)|"
    r"accept all cookies|consent-?wall|sp_message_container|didomi|onetrust|quantcast choice")


WALL_MAX_TEXT_CHARS = 600


def detect_wall(html: str, consent: bool = True) -> str | None:
    """What kind of wall a page is, when a bot check (or, with `consent`, a consent form) hides
    the article."""
    head = html[:60_000].lower()
    for label, pattern in BOT_CHALLENGE_MARKERS:
        if pattern.search(head):
            return f"bot challenge ({label})"
    if consent and CONSENT_MARKERS.search(head):
        return "consent wall"
    return None


class ExtractionError(DealwatchError):
    """The page could not be decoded or parsed at all."""


@dataclass(frozen=True, slots=True)
class Extraction:
    status: str  # article | not_article | blocked (a bot check or consent wall, no article)
    article: Article | None = None
    reason: str | None = None


def decode_body(body: bytes | str, headers: dict[str, str] | None = None) -> str:
    """Decode HTML bytes using the HTTP charset when it works, else trafilatura's detection."""
    if isinstance(body, str):
        return body
    content_type = (headers or {}).get("content-type", "")
    match = _CHARSET.search(content_type)
    if match:
        try:
            return body.decode(match.group(1))
        except (LookupError, UnicodeDecodeError):
            logger.debug("declared charset %s does not decode; detecting", match.group(1))
    return str(decode_file(body))


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:2000].lower()
    return head.startswith(("<!doctype html", "<html", "<?xml")) or bool(
        re.search(r"<(html|body|article|p|div)\b", head))


def choose_canonical(page_url: str, declared: str | None) -> str:
    """The page's own canonical link, unless it points off-site or to a home page.

    Broken CMS templates often declare the home page (or another site) as canonical for every
    article; trusting that would merge unrelated stories into one.
    """
    if declared:
        try:
            absolute = urljoin(page_url, declared.strip())
            parts, own = urlsplit(absolute), urlsplit(page_url)
            ok = (parts.scheme in ("http", "https") and parts.hostname and own.hostname
                  and (parts.port or 0) >= 0  # reading the port raises when it is out of range
                  and registered_domain(parts.hostname) == registered_domain(own.hostname)
                  and parts.path.strip("/"))
        except ValueError:  # a canonical link that is no URL is no canonical link
            ok = False
        if ok:
            return canonical_url(absolute)
    return canonical_url(page_url)


def extract_article(body: bytes | str, url: str, headers: dict[str, str] | None = None,
                    min_text_chars: int = 300) -> Extraction:
    """Main text + title, author, date, site name, language, canonical URL and text hash.

    Pages that are not articles (index pages, link lists, empty extraction) come back with
    status `not_article` and the reason.
    """
    html = decode_body(body, headers)
    if not html.strip():
        return Extraction("not_article", reason="empty body")
    result = _extract(html, url, headers, min_text_chars)
    # Real articles carry consent banners and captcha-protected comment forms too: a consent
    # wall is a page with no article at all; a bot check may leave a little text behind.
    if result.article is None:
        wall = detect_wall(html)
    elif len(result.article.text) < WALL_MAX_TEXT_CHARS:
        wall = detect_wall(html, consent=False)
    else:
        wall = None
    return Extraction("blocked", reason=wall) if wall else result


def _extract(html: str, url: str, headers: dict[str, str] | None, min_text_chars: int
             ) -> Extraction:
    try:
        tree = load_html(html)
        if tree is None:
            return Extraction("not_article", reason="not parseable as HTML")
        try:
            meta = page_metadata(tree, url, headers)
        except Exception as exc:  # metadata is a bonus: a page never fails for it
            logger.warning("%s: cannot read the page's metadata: %s: %s", url,
                           type(exc).__name__, exc)
            logger.debug("metadata failure", exc_info=True)  # the traceback, with -vv
            meta = PageMetadata()
        # fast: trafilatura's own extractor without its fallbacks; on the article-extraction
        # benchmark it is both quicker and more precise (bench/extraction_quality.py).
        doc = trafilatura.bare_extraction(
            tree, url=url, fast=True, include_comments=False, include_tables=True,
            deduplicate=False,
        )
    except Exception as exc:  # trafilatura/lxml raise many kinds on hostile markup
        raise ExtractionError(f"cannot parse HTML: {type(exc).__name__}: {exc}") from exc
    # clean first: zero-width padding neither counts as text nor reaches the store
    text = clean_text(str(getattr(doc, "text", None) or "")).strip()
    if not text:
        return Extraction("not_article", reason="no main text found")
    if len(text) < min_text_chars:
        return Extraction("not_article", reason=f"too little text ({len(text)} characters)")
    if prose_chars(text) < min_text_chars:
        return Extraction("not_article", reason="no running text (link list or teaser)")
    language = identify(text, meta.language)
    article = Article(
        url=url,
        canonical_url=choose_canonical(url, meta.canonical),
        text=text,
        text_hash=text_hash(text),
        title=clean_text(meta.title),
        author=clean_text(meta.author),
        published=meta.published,
        site=clean_text(meta.site),
        language=language.code,
        language_declared=language.declared,
        language_source=language.source,
        language_confidence=round(language.confidence, 3),
    )
    return Extraction("article", article=article)


def html_to_text(html: str, url: str | None = None) -> str:
    """Main text of an HTML document, or all of its text when extraction finds no article."""
    return html_to_passage(html, url)[0]


def html_to_passage(html: str, url: str | None = None) -> tuple[str, str | None]:
    """Main text and headline of an HTML document; all of its text and no headline when
    extraction finds no article. Raises ValueError, in one line, when url is no URL."""
    passage = html_document(html, url)
    return passage.text, passage.title


def html_document(html: str, url: str | None = None) -> Passage:
    """The passage of an HTML document: main text, headline and language (the page's declared
    one confirmed by identification, pipeline.language); all of its text and no headline when
    extraction finds no article. Raises ValueError, in one line, when url is no URL."""
    if url:
        try:
            _ = urlsplit(url).port  # reading the port raises when it is out of range
        except ValueError as exc:
            raise ValueError(f"not a URL: {url} ({exc})") from None
    result = extract_article(html, url or "https://example.invalid/", min_text_chars=0)
    if result.article:
        a = result.article
        return Passage(a.text, a.title or None, a.language)
    text = _all_text(html)
    return Passage(text, None, identify(text, _declared_language(html)).code)


def _declared_language(html: str) -> str | None:
    try:
        tree = load_html(html)
        return page_metadata(tree, "https://example.invalid/").language if tree is not None else None
    except Exception:  # a page whose head cannot be read declares nothing
        return None


def _all_text(html: str) -> str:
    try:
        root = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for junk in root.xpath("//script|//style|//noscript"):
        junk.drop_tree()
    # Block elements end a line, so paragraphs stay apart as they would in extracted text.
    for block in root.iter("p", "div", "li", "h1", "h2", "h3", "h4", "br", "tr"):
        block.tail = "\n" + (block.tail or "")
    return "\n".join(line.strip() for line in root.text_content().splitlines() if line.strip())
