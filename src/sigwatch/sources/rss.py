"""RSS and Atom feeds: conditional GET, tolerant parsing, one post per entry in feed order."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import xml.sax
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import feedparser
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sigwatch.errors import ParseError
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url, url_problem
from sigwatch.net.urls import normalised_url
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms
from sigwatch.sources.feed_fast import WEBSUB_RELS, FastFeed, is_rfc3023_default, read_feed
from sigwatch.sources.text import (
    absolutize_urls,
    html_to_text,
    normalize_whitespace,
    sanitize_html,
    text_to_html,
)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_DATE_FIELDS = ("published_parsed", "updated_parsed", "created_parsed")
#: Long enough for any real feed address, short enough to index (the origin is unique per owner).
MAX_URL_CHARS = 2048
#: Keys of a fetch state naming the feed's WebSub hub and topic (see with_websub_links).
WEBSUB_HUB_KEY = "websub_hub"
WEBSUB_TOPIC_KEY = "websub_topic"
_LINK_VALUE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_LINK_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


class RssOptions(BaseModel):
    """Options of an RSS/Atom source."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The feed's own URL, http:// or https://.")
    authorization: SecretStr | None = Field(
        None,
        description=(
            "Authorization header sent with every fetch, for a private feed, e.g. "
            "`Bearer <token>` or `Basic <base64 of user:password>`; never sent on to another "
            "host after a redirect."
        ),
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if len(value) > MAX_URL_CHARS:
            raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL, for example https://example.com/feed.xml"
            )
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("authorization")
    @classmethod
    def _check_authorization(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        header = value.get_secret_value().strip()
        if not header:
            raise ValueError("must not be blank: leave it out for a public feed")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in header):
            raise ValueError("must be one line without control characters")
        return SecretStr(header)

    def origin(self) -> str:
        """The feed's address normalised (:func:`~sigwatch.net.urls.normalised_url`), so one
        feed added twice is recognised as one."""
        return normalised_url(self.url)


class RssSource:
    """Collects the entries of one RSS or Atom feed."""

    kind: ClassVar[str] = "rss"
    Options: ClassVar[type[BaseModel]] = RssOptions

    def __init__(
        self, options: RssOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """Fetch the feed unless unchanged since ``state``; raise ParseError if it is no feed."""
        headers: dict[str, str] = {}
        if self.options.authorization is not None:
            headers["Authorization"] = self.options.authorization.get_secret_value()
        if state.get("etag"):
            headers["If-None-Match"] = str(state["etag"])
        if state.get("last_modified"):
            headers["If-Modified-Since"] = str(state["last_modified"])
        response = await self.client.get(self.options.url, headers=headers)
        new_state = _next_state(state, response)
        if response.status == 304:
            return FetchResult(posts=[], state=new_state, not_modified=True)

        parsed = parse_posts(response)
        if not parsed.is_feed:
            raise ParseError(_not_a_feed_message(response, parsed.problem))
        warnings: list[str] = []
        content_type = str(response.headers.get("content-type", ""))
        if parsed.problem is not None and not is_rfc3023_default(parsed.problem, content_type):
            warnings.append(_bozo_warning(parsed.problem, len(parsed.posts)))
        new_state = with_websub_links(new_state, parsed.links, response)
        return FetchResult(posts=parsed.posts, state=new_state, warnings=warnings)


@dataclass(frozen=True)
class ParsedFeed:
    """One feed document read for sigwatch: its posts, its own links and feedparser's complaint."""

    posts: list[CollectedPost]
    #: False when the document is no RSS or Atom feed at all.
    is_feed: bool
    #: (rel, href) of the feed's own hub and self links, in document order (with_websub_links).
    links: list[tuple[str, str]]
    #: What feedparser had to repair (its bozo exception), or None for a clean document.
    problem: object | None
    #: True when read by the fast path (:mod:`sigwatch.sources.feed_fast`), else by feedparser.
    fast: bool


def parse_posts(response: FetchedResponse) -> ParsedFeed:
    """The posts of a fetched feed document, one per entry in feed order.

    A well-formed RSS 2.0 or Atom 1.0 feed of the usual shape is read by the fast path, which
    gives what feedparser gives; any other document is read by feedparser, in full.
    """
    fast = read_feed(response.body, response.headers.get("content-type"))
    if isinstance(fast, FastFeed):
        entries, links, found, problem = fast.entries, fast.links, True, None
    else:
        parsed = parse_feed(response)
        entries = list(parsed.get("entries", []))
        links = [
            (str(link.get("rel") or ""), str(link.get("href") or ""))
            for link in (parsed.get("feed") or {}).get("links") or []
            if link.get("rel") in WEBSUB_RELS
        ]
        found = is_feed(parsed)
        problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    posts = [entry_to_post(entry, response.url) for entry in entries] if found else []
    return ParsedFeed(
        posts=posts, is_feed=found, links=links, problem=problem, fast=isinstance(fast, FastFeed)
    )


def parse_feed(response: FetchedResponse) -> feedparser.FeedParserDict:
    """Parse a fetched body with feedparser, never letting it open URLs or files itself."""
    # No Content-Location on purpose: given one, feedparser rewrites relative guids and Atom ids
    # into URLs under the feed's address, so a post's id would change with the URL the feed was
    # fetched from. Relative links are resolved in entry_to_post instead.
    response_headers: dict[str, str] = {}
    content_type = response.headers.get("content-type")
    if content_type:
        # feedparser follows RFC 3023: the charset of Content-Type decides the decoding.
        response_headers["content-type"] = content_type
    # A BytesIO, because feedparser treats a str or bytes argument as a URL or path to open.
    return feedparser.parse(io.BytesIO(response.body), response_headers=response_headers)


def with_websub_links(
    state: dict[str, Any], feed_links: Sequence[tuple[str, str]], response: FetchedResponse
) -> dict[str, Any]:
    """``state`` with the feed's WebSub hub and topic (``websub_hub``, ``websub_topic``), or
    without them when the feed names no hub.

    As WebSub discovery says, the HTTP ``Link`` header comes first, then the feed's own links
    ``feed_links`` (Atom ``<link>``, or ``atom:link`` in RSS; see ParsedFeed.links). The topic
    is the ``rel="self"`` URL, else the URL the feed was fetched from. The worker reads these
    keys to subscribe (see :mod:`sigwatch.worker.websub`); a hub that is no http(s) URL is
    ignored.
    """
    header_links = _link_header(response.headers.get_list("link"))
    found: dict[str, str] = {}
    for rel, href in [*header_links, *feed_links]:
        url = _absolute_http_url(href, response.url)
        if url is not None and rel in ("hub", "self"):
            found.setdefault(rel, url)
    new_state = {k: v for k, v in state.items() if k not in (WEBSUB_HUB_KEY, WEBSUB_TOPIC_KEY)}
    if "hub" in found:
        new_state[WEBSUB_HUB_KEY] = found["hub"]
        new_state[WEBSUB_TOPIC_KEY] = found.get("self", response.url)
    return new_state


def _link_header(values: list[str]) -> list[tuple[str, str]]:
    """(rel, URL) pairs of HTTP ``Link`` headers (RFC 8288), one per relation named."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for match in _LINK_VALUE.finditer(value):
            url, params = match.group(1), match.group(2)
            rel = _LINK_REL.search(params)
            if rel is not None:
                names = (rel.group(1) or rel.group(2) or "").lower().split()
                pairs.extend((name, url.strip()) for name in names)
    return pairs


def is_feed(parsed: feedparser.FeedParserDict) -> bool:
    """True when feedparser recognised RSS/Atom or found entries."""
    return bool(parsed.get("version")) or bool(parsed.get("entries"))


def entry_to_post(entry: dict[str, Any], base_url: str) -> CollectedPost:
    """Turn one feed entry (feedparser's, or the fast path's in the same shape) into a post, with
    sanitised HTML and plain text for matching."""
    title = _title(entry)
    body, body_type = _body(entry)
    if body_type in _HTML_TYPES:
        html = sanitize_html(absolutize_urls(body, base_url)) if body else None
        text = html_to_text(body)
    else:
        html = text_to_html(body) if body else None
        text = normalize_whitespace(body)
    url = _absolute_http_url(_get(entry, "link"), base_url)
    return CollectedPost(
        external_id=_external_id(entry, url, title, body),
        text=text,
        url=url,
        author=normalize_whitespace(str(_get(entry, "author") or "")) or None,
        title=title,
        html=html,
        published_at=_published_at(entry),
        raw=_raw(entry),
    )


def _get(entry: dict[str, Any], key: str) -> Any:
    # Plain dict lookup: FeedParserDict.get maps "updated" to "published" with a
    # DeprecationWarning, and sigwatch wants the fields exactly as the feed gave them.
    return dict.get(entry, key)


def _next_state(state: dict[str, Any], response: FetchedResponse) -> dict[str, Any]:
    new_state = dict(state)
    for key, header in (("etag", "etag"), ("last_modified", "last-modified")):
        value = response.headers.get(header)
        if value:
            new_state[key] = value
        elif response.status != 304:
            # A validator the server no longer sends would make later requests conditional on
            # something the server has forgotten.
            new_state.pop(key, None)
    return new_state


def _title(entry: dict[str, Any]) -> str | None:
    value = _get(entry, "title")
    if not value:
        return None
    detail = _get(entry, "title_detail") or {}
    if detail.get("type") in _HTML_TYPES:
        return html_to_text(str(value)) or None
    return normalize_whitespace(str(value)) or None


def _body(entry: dict[str, Any]) -> tuple[str, str]:
    """The richest body of the entry and its MIME type: full content first, then the summary."""
    contents = [c for c in _get(entry, "content") or [] if c.get("value")]
    html_contents = [c for c in contents if c.get("type") in _HTML_TYPES]
    chosen = (html_contents or contents or [None])[0]
    if chosen is not None:
        return str(chosen["value"]), str(chosen.get("type") or "text/html")
    summary = _get(entry, "summary")
    if summary:
        detail = _get(entry, "summary_detail") or {}
        return str(summary), str(detail.get("type") or "text/html")
    return "", "text/plain"


def _absolute_http_url(link: object, base_url: str) -> str | None:
    if not isinstance(link, str) or not link.strip():
        return None
    url = urljoin(base_url, link.strip())
    # Links end up as anchors in the dashboard and alerts; javascript: and data: must not.
    return url if urlsplit(url).scheme in ("http", "https") else None


def _external_id(entry: dict[str, Any], url: str | None, title: str | None, body: str) -> str:
    for candidate in (_get(entry, "id"), url):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    digest = hashlib.sha256(f"{title or ''}\n{body}".encode()).hexdigest()
    return f"sha256:{digest}"


def _published_at(entry: dict[str, Any]) -> datetime | None:
    for name in _DATE_FIELDS:
        value = _get(entry, name)
        if value is None:
            continue
        try:
            # feedparser's *_parsed values are UTC struct_times.
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            continue
    return None


def _raw(entry: dict[str, Any]) -> dict[str, Any]:
    """A small JSON-safe record of the entry's metadata."""
    raw: dict[str, Any] = {}
    for name in ("id", "link", "title", "author", "published", "updated", "comments"):
        value = _get(entry, name)
        if isinstance(value, str) and value:
            raw[name] = value
    tags = [str(t.get("term")) for t in _get(entry, "tags") or [] if t.get("term")]
    if tags:
        raw["tags"] = tags
    enclosures = [
        {k: str(link[k]) for k in ("href", "type", "length") if link.get(k)}
        for link in _get(entry, "links") or []
        if link.get("rel") == "enclosure" and link.get("href")
    ]
    if enclosures:
        raw["enclosures"] = enclosures
    links = [
        {k: str(link[k]) for k in ("rel", "type", "href") if link.get(k)}
        for link in _get(entry, "links") or []
        if link.get("href")
    ]
    if links:
        raw["links"] = links
    return raw


def _bozo_warning(exc: object, kept: int) -> str:
    items = f"kept {kept} item" + ("" if kept == 1 else "s")
    if isinstance(exc, xml.sax.SAXParseException):
        return (
            f"feed is not well-formed XML (line {exc.getLineNumber()}: {exc.getMessage()}); {items}"
        )
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"feed's declared character encoding is wrong ({exc}); {items}"
    if isinstance(exc, feedparser.CharacterEncodingUnknown):
        return f"feed's character encoding is unknown ({exc}); {items}"
    if isinstance(exc, feedparser.NonXMLContentType):
        return f"feed is served with a non-XML Content-Type ({exc}); {items}"
    return f"feed has problems ({exc}); {items}"


def _not_a_feed_message(response: FetchedResponse, exc: object | None) -> str:
    content_type = response.headers.get("content-type", "no Content-Type").split(";")[0].strip()
    detail = ""
    if isinstance(exc, xml.sax.SAXParseException):
        detail = f", line {exc.getLineNumber()}: {exc.getMessage()}"
    return (
        f"{redact_url(response.url)} did not return an RSS or Atom feed ({content_type}{detail}): "
        "give the feed's own URL, or let sigwatch find it with "
        "`sigwatch source add rss <home page URL>`"
    )
