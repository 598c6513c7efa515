"""Spider for listing pages (section fronts, archives): links matching the source's rules are articles."""

from __future__ import annotations

from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor

from scrapers.spiders.base import SourceSpider, content_type, is_html
from scrapers.spiders.documents import Listed, MalformedDocument


class ListingSpider(SourceSpider):
    """Every <a href> of the listing page is offered to the link policy (domains, allow, deny)."""

    kind = "listing"
    entry_role = "listing"

    # Extraction only: the follow/skip decisions are LinkPolicy's. Scrapy's default
    # deny_extensions already drops links to images, PDFs, archives and the like.
    link_extractor = LinkExtractor(tags=("a", "area"), attrs=("href",), unique=True)

    def entries(self, response: Response) -> list[Listed]:
        if not isinstance(response, TextResponse) or not is_html(response):
            raise MalformedDocument(
                f"not an HTML page (content type {content_type(response.headers) or 'unknown'})")
        return [Listed(link.url, link.text.strip() or None)
                for link in self.link_extractor.extract_links(response)]
