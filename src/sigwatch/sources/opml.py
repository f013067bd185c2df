"""OPML feed lists: read the ones feed readers export, write one they can import."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

from sigwatch.errors import ParseError

# A DOCTYPE is where entities are declared, and entities are how "billion laughs" and
# external-entity attacks get in. OPML never needs either, so any declaration is refused before
# the parser sees the document. NUL bytes are dropped first so that UTF-16/32 text, where every
# ASCII letter is padded with NULs, is searched just like UTF-8.
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed of an OPML list: its title, URL and folder (None at the top level)."""

    title: str
    url: str
    category: str | None = None


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document in document order; raise ParseError if it is not OPML."""
    if _DECLARATION.search(data.replace(b"\x00", b"")):
        raise ParseError(
            "OPML file contains a DOCTYPE or ENTITY declaration, which sigwatch refuses for "
            "safety: remove it (feed lists never need one) and import again"
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ParseError(
            f"OPML file is not well-formed XML (line {line}, column {column + 1}: "
            f"{_expat_message(exc)}): export the list again from your feed reader"
        ) from None
    if _local_name(root.tag) != "opml":
        raise ParseError(
            f"not an OPML file: the root element is <{_local_name(root.tag)}>, not <opml>; "
            "export the feed list as OPML from your feed reader"
        )
    body = next((child for child in root if _local_name(child.tag) == "body"), None)
    if body is None:
        raise ParseError("OPML file has no <body>: export the feed list again")
    feeds: list[OpmlFeed] = []
    _collect(body, feeds)
    return feeds


def write_opml(feeds: Iterable[OpmlFeed], title: str) -> bytes:
    """An OPML 2.0 document listing ``feeds``, grouped into folders by category."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.category:
            parent = folders.get(feed.category) or ET.SubElement(
                body, "outline", text=feed.category, title=feed.category
            )
            folders[feed.category] = parent
        ET.SubElement(
            parent, "outline", type="rss", text=feed.title, title=feed.title, xmlUrl=feed.url
        )
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document + b"\n"


def _collect(body: ET.Element, feeds: list[OpmlFeed]) -> None:
    """Append the feeds under ``body`` in document order.

    A loop over an explicit stack, not recursion: folders may nest as deep as the file likes.
    """
    pending: list[tuple[ET.Element, str | None]] = [(child, None) for child in reversed(body)]
    while pending:
        outline, category = pending.pop()
        if _local_name(outline.tag) != "outline":
            continue
        # Exporters disagree on case (xmlUrl, xmlurl, XMLURL).
        attrs = {name.lower(): value.strip() for name, value in outline.attrib.items()}
        label = attrs.get("text") or attrs.get("title") or ""
        url = attrs.get("xmlurl")
        if url:
            feeds.append(OpmlFeed(title=label or url, url=url, category=category))
        # A feed outline may itself hold outlines; they belong to the nearest folder.
        inner = (label or category) if not url else category
        pending.extend((child, inner) for child in reversed(outline))


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _expat_message(exc: ET.ParseError) -> str:
    # str(exc) reads "mismatched tag: line 3, column 4"; the position is reported separately.
    return str(exc).split(": line", 1)[0]
