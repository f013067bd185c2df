"""A fast reader for well-formed RSS 2.0 and Atom 1.0 feeds that gives feedparser's answer or none.

feedparser spends most of a 50-item feed's ~13 ms in Python callbacks per element and in its HTML
sanitiser, which re-serialises every description. :func:`read_feed` parses the document with the
standard library's expat-based ElementTree instead and builds the entries in feedparser's shape
(the keys :func:`sigwatch.sources.rss.entry_to_post` reads), with the values feedparser would give.

It only reads what it knows feedparser's answer for, and declines everything else, so that the
caller parses the whole feed with feedparser: a document that is not well-formed, has a DOCTYPE or
an encoding feedparser would flag, uses xml:base, an element or attribute not listed here, a
duplicate title, or HTML that feedparser's sanitiser would change (see
:mod:`sigwatch.sources.feed_html`).
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.exceptions import CharacterEncodingOverride
from feedparser.mixin import _FeedParserMixin

from sigwatch.sources.feed_html import NotPassedThrough, feedparser_html, respelled

_ATOM = "http://www.w3.org/2005/atom"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_DC = "http://purl.org/dc/elements/1.1/"
_MEDIA = "http://search.yahoo.com/mrss/"
_WFW = "http://wellformedweb.org/commentapi/"
_SLASH = "http://purl.org/rss/1.0/modules/slash/"

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: The relations of a feed's own links that WebSub discovery reads.
WEBSUB_RELS = ("hub", "self")
#: Namespace URI (lowercased, as feedparser matches them) -> feedparser's prefix for it.
_KNOWN_NAMESPACES: dict[str, str] = {
    uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()
}
#: First words of feedparser's element handlers: a document that binds one of them to a namespace
#: feedparser does not know would reach a handler under another name.
_HANDLER_PREFIXES = frozenset(
    name.split("_")[2].lower()
    for name in dir(_FeedParserMixin)
    if name.startswith(("_start_", "_end_")) and name.count("_") >= 3
)
#: Feed-level elements that start or redirect feedparser's entry state, by feedparser's name.
_STATEFUL = frozenset({"item", "entry", "source", "textinput", "image", "link", "channel", "feed"})
#: Prefixes of feedparser-known namespaces whose feed-level leaf elements only fill the feed dict.
_FEED_LEVEL_PREFIXES = frozenset({"dc", "dcterms", "sy", "itunes", "media", "feedburner", "admin"})
_IMAGE_CHILDREN = frozenset({"title", "link", "url", "width", "height", "description"})

#: What feedparser's plain-text-or-HTML guess for an RSS title needs before it says HTML.
_HTML_HINT = re.compile(r"</\w+>|&#?\w+;")
#: feedparser rewrites a link's ``&name;`` into ``&name`` and ``scheme:///`` into ``scheme://``.
_LINK_REFERENCE = re.compile(r"&[A-Za-z0-9_]+;")
_C1_CONTROLS = re.compile("[\x80-\x9f]")


@dataclass(frozen=True)
class FastFeed:
    """A feed read by the fast path: entries in feedparser's shape and the feed's own links."""

    entries: list[dict[str, Any]]
    #: (rel, href) of the feed's own WebSub links (rel hub or self), in document order.
    links: list[tuple[str, str]]


@dataclass(frozen=True)
class Declined:
    """The fast path left this document to feedparser; ``reason`` says what it did not know."""

    reason: str


class _Decline(Exception):
    pass


def read_feed(body: bytes, content_type: str | None) -> FastFeed | Declined:
    """The feed in ``body`` as feedparser would read it, or Declined when not sure of that."""
    try:
        return _read(body, content_type or "")
    except _Decline as exc:
        return Declined(str(exc))


def is_rfc3023_default(problem: object, content_type: str) -> bool:
    """True when feedparser's only complaint is RFC 3023's us-ascii default for text/* without
    a charset, which servers send all the time meaning the XML declaration's encoding."""
    return (
        isinstance(problem, CharacterEncodingOverride)
        and "declared as us-ascii" in str(problem)
        and "charset" not in content_type.lower()
    )


def _read(body: bytes, content_type: str) -> FastFeed:
    if not body.strip():
        raise _Decline("empty document")
    # feedparser's own decoding, so that the text is the text feedparser parses.
    result: dict[str, Any] = {}
    data = convert_to_utf8({"content-type": content_type} if content_type else {}, body, result)
    if not result.get("encoding"):
        raise _Decline("unknown encoding")
    problem = result.get("bozo_exception") if result.get("bozo") else None
    if problem is not None and not is_rfc3023_default(problem, content_type):
        raise _Decline(f"encoding problem: {problem}")
    # No DTD at all: no entity expansion, nothing external, nothing feedparser rewrites first.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _Decline("DOCTYPE or entity declaration")
    parser: ET.XMLPullParser[Any] = ET.XMLPullParser(events=("start-ns", "start"))
    try:
        parser.feed(data)
        parser.close()
    except ET.ParseError as exc:
        raise _Decline(f"not well-formed: {exc}") from None
    root: ET.Element | None = None
    declared: dict[str, str] = {}
    for event, value in cast(Iterator[tuple[str, Any]], parser.read_events()):
        if event == "start-ns":
            prefix, uri = value
            _check_namespace(prefix, uri, declared)
        elif root is None:
            root = value
    assert root is not None  # a well-formed document has a root element
    _check_everywhere(root)
    if root.tag == "rss":
        return _read_rss(root)
    if root.tag == "{http://www.w3.org/2005/Atom}feed":
        return _read_atom(root)
    raise _Decline(f"root element {root.tag}")


def _check_namespace(prefix: str, uri: str, declared: dict[str, str]) -> None:
    """Decline namespace bindings under which feedparser names elements differently from here."""
    lower = uri.lower()
    if "backend.userland.com" in lower:
        raise _Decline("userland namespace")
    if lower not in _KNOWN_NAMESPACES:
        if not prefix:
            raise _Decline(f"unknown default namespace {uri}")
        if prefix.lower() in _HANDLER_PREFIXES:
            raise _Decline(f"prefix {prefix} bound to unknown namespace {uri}")
    if declared.setdefault(prefix, uri) != uri:
        raise _Decline(f"prefix {prefix} bound twice")


def _check_everywhere(root: ET.Element) -> None:
    for element in root.iter():
        if _split_tag(element.tag)[1].lower() in ("svg", "math"):
            raise _Decline("inline SVG or MathML")
        for key in element.attrib:
            # feedparser takes both xml:base and a plain base attribute as the base URI.
            if _split_tag(key)[1].lower() == "base":
                raise _Decline("xml:base")


# --- the two formats ----------------------------------------------------------------------------


def _read_rss(root: ET.Element) -> FastFeed:
    if len(root) != 1 or root[0].tag != "channel" or root[0].attrib:
        raise _Decline("rss element without exactly one plain channel")
    entries: list[dict[str, Any]] = []
    links: list[tuple[str, str]] = []
    for child in root[0]:
        name = _feedparser_name(child.tag)
        if child.tag == "item":
            entries.append(_rss_entry(child))
        elif name == "link":
            if child.attrib:
                _add_websub_link(links, _link_attributes(child))
            # A plain <link> is the feed's alternate link, a web page.
        elif child.tag == "image":
            _check_children(child, _IMAGE_CHILDREN)
        elif child.tag in ("skipHours", "skipDays"):
            _check_children(child, None)
        else:
            _check_feed_level_leaf(child, name)
    return FastFeed(entries=entries, links=links)


def _read_atom(root: ET.Element) -> FastFeed:
    entries: list[dict[str, Any]] = []
    links: list[tuple[str, str]] = []
    for child in root:
        name = _feedparser_name(child.tag)
        ns = _namespace(child.tag)
        if ns == _ATOM and name == "entry":
            entries.append(_atom_entry(child))
        elif ns == _ATOM and name == "link":
            _add_websub_link(links, _link_attributes(child))
        elif ns == _ATOM and name in ("author", "contributor"):
            _check_children(child, {"name", "email", "uri"}, _ATOM)
        else:
            _check_feed_level_leaf(child, name)
    return FastFeed(entries=entries, links=links)


def _add_websub_link(links: list[tuple[str, str]], attrs: dict[str, str]) -> None:
    if attrs["rel"] in WEBSUB_RELS:
        links.append((attrs["rel"], attrs["href"]))


def _check_feed_level_leaf(element: ET.Element, name: str) -> None:
    """Decline a feed-level element unless it is a leaf that only fills feedparser's feed dict."""
    if len(element):
        raise _Decline(f"feed-level element {element.tag} with children")
    if ":" in name:
        if name.split(":", 1)[0] not in _FEED_LEVEL_PREFIXES | {"?"}:
            raise _Decline(f"feed-level element {element.tag}")
    elif name in _STATEFUL:
        raise _Decline(f"feed-level element {element.tag}")


def _check_children(
    element: ET.Element, allowed: set[str] | frozenset[str] | None, ns: str = ""
) -> None:
    for child in element:
        if len(child) or _namespace(child.tag) != ns:
            raise _Decline(f"{element.tag} holds {child.tag}")
        if allowed is not None and _local(child.tag) not in allowed:
            raise _Decline(f"{element.tag} holds {child.tag}")


# --- entries ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One entry being built, with the bits of feedparser's parser state that shape it."""

    values: dict[str, Any] = field(default_factory=dict)
    has_content: bool = False
    titles: int = 0
    #: Whether an HTML body is spelled differently from feedparser's (the same HTML tree).
    respelled: bool = False

    def link(self, element: ET.Element) -> None:
        if element.attrib:
            attrs = _link_attributes(element)
            self.values.setdefault("links", []).append(attrs)
            if attrs["rel"] == "alternate" and _content_type(attrs["type"]) in _HTML_TYPES:
                self.values["link"] = attrs["href"]
            return
        self.values.setdefault("links", []).append({"rel": "alternate", "type": "text/html"})
        value = _uri_text(element)
        if _LINK_REFERENCE.search(value):
            raise _Decline("entity-like text in a link")
        self.values["link"] = value
        if value:
            self.values["links"][-1]["href"] = value

    def identifier(self, element: ET.Element, is_link: bool) -> None:
        self.values["id"] = _uri_text(element)
        if is_link:
            # feedparser lets a permalink guid (or an Atom id) stand in for a missing link.
            self.values.setdefault("link", self.values["id"])

    def html(self, value: str) -> str:
        """An HTML value as feedparser would give it, up to spellings that parse the same."""
        try:
            same_tree = feedparser_html(value)
        except NotPassedThrough as exc:
            raise _Decline(str(exc)) from None
        self.respelled = self.respelled or respelled(value, same_tree)
        return same_tree

    def title(self, value: str, content_type: str) -> None:
        self.titles += 1
        if self.titles > 1:
            raise _Decline("two titles in one entry")
        if content_type in _HTML_TYPES:
            # raw keeps the title as feedparser gives it, so it must be that very string.
            if respelled(value, self.html(value)):
                raise _Decline("HTML title feedparser would respell")
        self.values["title"] = value
        self.values["title_detail"] = {"type": content_type}

    def summary(self, value: str, content_type: str) -> None:
        if "summary" in self.values and not self.has_content:
            # feedparser then reads the second summary as content.
            raise _Decline("two summaries in one entry")
        if content_type in _HTML_TYPES:
            value = self.html(value)
        self.values["summary"] = value
        self.values["summary_detail"] = {"type": content_type}

    def content(self, value: str, content_type: str) -> None:
        if content_type in _HTML_TYPES:
            value = self.html(value)
        self.has_content = True
        self.values.setdefault("content", []).append({"type": content_type, "value": value})
        self.values.setdefault("summary", value)

    def date(self, key: str, element: ET.Element) -> None:
        value = _text(element)
        self.values[key] = value
        self.values[f"{key}_parsed"] = _parse_date(value)

    def category(self, element: ET.Element) -> None:
        attrs = _attributes(element, {"term", "scheme", "domain", "label"})
        tags: list[dict[str, str | None]] = self.values.setdefault("tags", [])
        _add_tag(
            tags, attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label")
        )
        value = _text(element)
        if not value:
            return
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            _add_tag(tags, value, None, None)

    def finish(self) -> dict[str, Any]:
        if self.respelled and not str(self.values.get("id") or "").strip():
            # The id then falls back to the link or a hash of the body, which must be the very
            # string feedparser gives.
            raise _Decline("entry without id whose HTML feedparser would respell")
        return self.values


def _rss_entry(item: ET.Element) -> dict[str, Any]:
    if item.attrib:
        raise _Decline("attributes on an item")
    entry = _Entry()
    for child in item:
        if len(child):
            raise _Decline(f"item element {child.tag} with children")
        tag = _split_tag(child.tag)
        if tag == ("", "title"):
            _no_attributes(child)
            value = _text(child)
            # feedparser would guess whether this "plain text" title is really HTML.
            if _HTML_HINT.search(value):
                raise _Decline("RSS title that may be HTML")
            entry.title(value, "text/plain")
        elif tag == ("", "link") or tag == (_ATOM, "link"):
            entry.link(child)
        elif tag == ("", "guid"):
            attrs = _attributes(child, {"ispermalink"})
            entry.identifier(child, attrs.get("ispermalink", "true") == "true")
        elif tag in (("", "description"), (_DC, "description")):
            _no_attributes(child)
            entry.summary(_text(child), "text/html")
        elif tag == (_CONTENT, "encoded"):
            _no_attributes(child)
            entry.content(_text(child), "text/html")
        elif tag == ("", "pubDate"):
            _no_attributes(child)
            entry.date("published", child)
        elif tag == (_DC, "date"):
            _no_attributes(child)
            entry.date("updated", child)
        elif tag in (("", "author"), (_DC, "creator")):
            _no_attributes(child)
            entry.values["author"] = _text(child)  # the last one wins, as in feedparser
        elif tag in (("", "category"), (_DC, "subject")):
            entry.category(child)
        elif tag == ("", "comments"):
            _no_attributes(child)
            entry.values["comments"] = _uri_text(child)
        elif tag == ("", "enclosure"):
            attrs = _href_attributes(_attributes(child, None))
            attrs["rel"] = "enclosure"
            entry.values.setdefault("links", []).append(attrs)
        elif tag in ((_MEDIA, "content"), (_MEDIA, "thumbnail")):
            pass  # media_content / media_thumbnail: nothing a post reads
        elif tag in ((_WFW, "commentRss"), (_WFW, "comment"), (_SLASH, "comments")):
            _no_attributes(child)
        else:
            raise _Decline(f"item element {child.tag}")
    return entry.finish()


def _atom_entry(element: ET.Element) -> dict[str, Any]:
    if element.attrib:
        raise _Decline("attributes on an entry")
    entry = _Entry()
    authors = 0
    for child in element:
        ns, local = _split_tag(child.tag)
        if ns == _ATOM and local == "author":
            authors += 1
            if authors > 1:
                raise _Decline("two authors in one entry")
            entry.values["author"] = _atom_author(child)
            continue
        if len(child):
            raise _Decline(f"entry element {child.tag} with children")
        if ns == _MEDIA and local in ("content", "thumbnail"):
            continue
        if ns != _ATOM:
            raise _Decline(f"entry element {child.tag}")
        if local == "id":
            _no_attributes(child)
            entry.identifier(child, True)
        elif local == "title":
            entry.title(_text(child), _atom_text_type(child))
        elif local == "link":
            entry.link(child)
        elif local in ("published", "updated"):
            _no_attributes(child)
            entry.date(local, child)
        elif local == "category":
            entry.category(child)
        elif local == "summary":
            entry.summary(_text(child), _atom_text_type(child))
        elif local == "content":
            entry.content(_text(child), _atom_text_type(child))
        elif local == "rights":
            _atom_text_type(child)
        else:
            raise _Decline(f"entry element {child.tag}")
    return entry.finish()


def _atom_author(element: ET.Element) -> str:
    """feedparser's ``author``: "name (email)", the name or the email, from the children."""
    _no_attributes(element)
    if (element.text or "").strip():
        raise _Decline("text in an Atom author")
    parts: dict[str, str] = {}
    for child in element:
        local = _local(child.tag)
        if len(child) or _namespace(child.tag) != _ATOM or local not in ("name", "email", "uri"):
            raise _Decline(f"author element {child.tag}")
        if local in parts or (child.tail or "").strip():
            raise _Decline("odd Atom author")
        _no_attributes(child)
        parts[local] = _text(child)
    name, email = parts.get("name"), parts.get("email")
    if name and email:
        return f"{name} ({email})"
    return name or email or ""


def _atom_text_type(element: ET.Element) -> str:
    """The MIME type of an Atom text construct; xhtml and other types are declined."""
    attrs = _attributes(element, {"type"})
    content_type = _content_type(attrs.get("type", "text/plain"))
    if content_type not in ("text/plain", "text/html"):
        raise _Decline(f"Atom content of type {content_type}")
    return content_type


def _add_tag(
    tags: list[dict[str, str | None]], term: str | None, scheme: str | None, label: str | None
) -> None:
    if not term and not scheme and not label:
        return
    tag = {"term": term, "scheme": scheme, "label": label}
    if tag not in tags:
        tags.append(tag)


# --- values -------------------------------------------------------------------------------------


def _text(element: ET.Element) -> str:
    """An element's text as feedparser stores it: stripped, and declined where feedparser would
    repair it (C1 controls it maps to cp1252, UTF-8 read as latin-1 it decodes again)."""
    value = (element.text or "").strip()
    if value.isascii():
        return value
    if _C1_CONTROLS.search(value):
        raise _Decline("C1 control characters")
    try:
        value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
    raise _Decline("text feedparser would re-decode")


def _uri_text(element: ET.Element) -> str:
    value = _text(element)
    if ":///" in value:
        raise _Decline("URI feedparser would rewrite")
    return value


def _attributes(element: ET.Element, allowed: set[str] | None) -> dict[str, str]:
    """The element's attributes as feedparser keys them: names lowercased, rel and type values
    lowercased; xml:lang left out. Declines namespaced, duplicate or unlisted ones."""
    attrs: dict[str, str] = {}
    for key, value in element.attrib.items():
        if key.startswith("{"):
            if key == "{http://www.w3.org/XML/1998/namespace}lang":
                continue
            raise _Decline(f"attribute {key}")
        name = key.lower()
        if name in attrs or (allowed is not None and name not in allowed):
            raise _Decline(f"attribute {key} on {element.tag}")
        attrs[name] = value.lower() if name in ("rel", "type") else value
    return attrs


def _no_attributes(element: ET.Element) -> None:
    _attributes(element, set())


def _href_attributes(attrs: dict[str, str]) -> dict[str, str]:
    """feedparser's choice of url, uri or href as a link's ``href``."""
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs


def _link_attributes(element: ET.Element) -> dict[str, str]:
    """A <link> with attributes as feedparser records it: rel and type defaulted, href chosen."""
    if len(element):
        raise _Decline("link with children")
    attrs = _href_attributes(_attributes(element, None))
    attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
    if "href" not in attrs:
        raise _Decline("link with attributes but no href")
    if ":///" in attrs["href"]:
        raise _Decline("URI feedparser would rewrite")
    return attrs


def _content_type(value: str) -> str:
    value = value.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html"}.get(value, value)


@functools.lru_cache(maxsize=1024)
def _split_tag(tag: str) -> tuple[str, str]:
    """(namespace URI lowercased as feedparser matches it, local name) of an ElementTree tag."""
    if not tag.startswith("{"):
        return "", tag
    namespace, local = tag[1:].split("}", 1)
    return namespace.lower(), local


def _namespace(tag: str) -> str:
    return _split_tag(tag)[0]


def _local(tag: str) -> str:
    return _split_tag(tag)[1]


def _feedparser_name(tag: str) -> str:
    """The element's name as feedparser dispatches on it: lowercased, known prefix or none."""
    ns, local = _namespace(tag), _local(tag).lower()
    if not ns:
        return local
    prefix = _KNOWN_NAMESPACES.get(ns)
    if prefix is None:
        return f"?:{local}"  # a prefix of the document's, bound to no feedparser handler
    return f"{prefix.lower()}:{local}" if prefix else local
