"""Feed discovery: from a site's home page to the URL of its RSS or Atom feed."""

from __future__ import annotations

from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from sigwatch.errors import FetchError, ParseError
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url
from sigwatch.sources.rss import parse_posts

# Types of <link rel="alternate"> that name a feed. JSON Feed comes last, after the usual paths,
# because the rss source kind (feedparser) reads RSS and Atom only.
_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
_JSON_FEED_TYPES = frozenset({"application/feed+json"})
COMMON_FEED_PATHS = ("/feed", "/rss", "/feed.xml", "/rss.xml", "/atom.xml", "/index.xml")


async def discover_feed(client: OutboundClient, url: str) -> str:
    """The feed URL for ``url``: itself if a feed, else one its page links to or a usual path."""
    response = await client.get(url)
    if _is_feed_response(response):
        return response.url
    xml_links, json_links = _alternate_links(response)
    if xml_links:
        return xml_links[0]
    for path in COMMON_FEED_PATHS:
        candidate = urljoin(response.url, path)
        try:
            found = await client.get(candidate)
        except FetchError:
            # A missing /feed is the normal case while probing; only a hit matters.
            continue
        if _is_feed_response(found):
            return found.url
    if json_links:
        return json_links[0]
    raise ParseError(
        f"no feed found at {redact_url(response.url)}: the page links to no RSS or Atom feed "
        "and none of the usual paths answered with one; give the feed URL itself"
    )


def _is_feed_response(response: FetchedResponse) -> bool:
    if not response.body.strip():
        return False
    return parse_posts(response).is_feed


def _alternate_links(response: FetchedResponse) -> tuple[list[str], list[str]]:
    """Absolute hrefs of the page's feed links: (RSS/Atom ones, JSON Feed ones)."""
    tree = LexborHTMLParser(response.body.decode(_charset(response), errors="replace"))
    base = response.url
    base_node = tree.css_first("base[href]")
    if base_node is not None and base_node.attributes.get("href"):
        base = urljoin(base, str(base_node.attributes["href"]).strip())
    xml_links: list[str] = []
    json_links: list[str] = []
    for node in tree.css("link[href]"):
        rel = (node.attributes.get("rel") or "").lower().split()
        kind = (node.attributes.get("type") or "").lower().split(";")[0].strip()
        href = (node.attributes.get("href") or "").strip()
        if "alternate" not in rel or not href:
            continue
        absolute = urljoin(base, href)
        if not absolute.startswith(("http://", "https://")):
            continue
        if kind in _FEED_TYPES:
            xml_links.append(absolute)
        elif kind in _JSON_FEED_TYPES:
            json_links.append(absolute)
    return xml_links, json_links


def _charset(response: FetchedResponse) -> str:
    content_type: str = response.headers.get("content-type", "")
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"
