"""The HTML that feedparser's sanitiser gives back unchanged, so the fast path may skip it.

feedparser resolves relative URIs in every HTML value (against no base, as sigwatch gives it
none) and sanitises it; sigwatch then sanitises it again with nh3
(:func:`~sigwatch.sources.text.sanitize_html`) and reads its text with lexbor
(:func:`~sigwatch.sources.text.html_to_text`). For HTML made only of the elements and attributes
below, written plainly (lowercase names, double quotes, attributes once each, known entities,
plain comments), feedparser's output is the input token for token, except for spellings that
parse to the same HTML tree: void tags (``<br>`` becomes ``<br />``), ``&#39;`` and ``&#34;``
become quotes, attributes are sorted (done here too), and ``style`` and ``rel`` values are
rewritten, which nh3 drops or sets itself. The same tree gives the same sanitised ``html`` and
the same ``text``; where the string itself is kept, :func:`respelled` says whether it would differ.
"""

from __future__ import annotations

import functools
import html.entities
import re
from urllib.parse import urlsplit

# All of these are in feedparser's acceptable elements and attributes (tests/sources hold it).
ELEMENTS = frozenset(
    "a abbr b blockquote br cite code dd del div dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hr "
    "i img ins li ol p pre q s small span strike strong sub sup table tbody td tfoot th thead tr "
    "u ul".split()
)
_VOID_ELEMENTS = frozenset({"br", "hr", "img"})
ATTRIBUTES = frozenset("align alt class height href id rel src style target title width".split())
_URL_ATTRIBUTES = frozenset({"href", "src"})
_HREF_SCHEMES = frozenset({"", "http", "https", "mailto"})
_HTML_TOKEN = re.compile(r"<[^<>]*>|&[^&;<>\s]*;?|[^<&]+|[<&]")
_START_TAG = re.compile(r'<([a-z][a-z0-9]*)((?: [a-z]+="[^"<>]*")*)( ?/)?>')
_END_TAG = re.compile(r"</([a-z][a-z0-9]*)>")
#: A plain comment, kept as it is by feedparser and dropped by nh3 and html_to_text.
_COMMENT = re.compile(r"<!--(?:[^<>-]|-(?!-))*-->")
_HTML_ATTRIBUTE = re.compile(r' ([a-z]+)="([^"<>]*)"')
_URL_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~:/?#@!$'()*+,;=%]|&amp;)*")
_TEXT_VALUE = re.compile(r"(?:[^&]|&amp;)*")
_ENTITY = re.compile(r"&(?:([A-Za-z][A-Za-z0-9]*)|#([0-9]{1,7}));")
_ENTITY_NAMES = frozenset(html.entities.name2codepoint) | {"apos"}
#: Spellings feedparser rewrites without changing the HTML tree, and the attributes whose values
#: it rewrites (style, rel), which nh3 drops or sets itself.
_RESPELLED = re.compile(r'<(?:br|hr|img)\b|&#(?:39|34);| (?:rel|style)="')


def feedparser_html(fragment: str) -> str:
    """``fragment`` with each tag's attributes in the order feedparser writes them back (sorted);
    raises NotPassedThrough when it is outside the subset."""
    if "<" not in fragment and "&" not in fragment and "\r" not in fragment:
        return fragment
    pieces: list[str] = []
    for match in _HTML_TOKEN.finditer(fragment):
        token = match.group()
        first = token[0]
        if first == "<":
            token = _feedparser_tag(token)
        elif token == "&" and fragment[match.end() : match.end() + 1] in ("", " ", "\n", "\t"):
            pass  # a bare "& " or a final "&" is text to feedparser and to HTML alike
        elif first == "&":
            entity = _ENTITY.fullmatch(token)
            if entity is None:
                raise NotPassedThrough(f"HTML entity {token!r}")
            name, number = entity.groups()
            if name is not None and name not in _ENTITY_NAMES:
                raise NotPassedThrough(f"HTML entity {token!r}")
            if number is not None and 128 <= int(number) <= 159:
                raise NotPassedThrough(f"HTML character reference {token!r}")
        elif "\r" in token:
            raise NotPassedThrough("carriage return in HTML")
        pieces.append(token)
    return "".join(pieces)


@functools.lru_cache(maxsize=4096)
def _feedparser_tag(token: str) -> str:
    # Cached: the same few tags (<p>, </p>, </a>) make up most of every feed's HTML.
    if token.startswith("<!"):
        if _COMMENT.fullmatch(token) is None:
            raise NotPassedThrough(f"HTML declaration {token!r}")
        return token
    end = _END_TAG.fullmatch(token)
    if end is not None:
        if end.group(1) not in ELEMENTS or end.group(1) in _VOID_ELEMENTS:
            raise NotPassedThrough(f"HTML tag {token!r}")
        return token
    start = _START_TAG.fullmatch(token)
    if start is None:
        raise NotPassedThrough(f"HTML tag {token!r}")
    name, attributes, self_closing = start.groups()
    if name not in ELEMENTS or (self_closing and name not in _VOID_ELEMENTS):
        raise NotPassedThrough(f"HTML tag {token!r}")
    found: dict[str, str] = {}
    for attribute in _HTML_ATTRIBUTE.finditer(attributes):
        key, value = attribute.groups()
        # A repeated attribute: HTML keeps the first, feedparser the last.
        if key not in ATTRIBUTES or key in found:
            raise NotPassedThrough(f"HTML tag {token!r}")
        pattern = _URL_VALUE if key in _URL_ATTRIBUTES else _TEXT_VALUE
        if pattern.fullmatch(value) is None:
            raise NotPassedThrough(f"HTML attribute value in {token!r}")
        if key == "href" and _scheme(value) not in _HREF_SCHEMES:
            raise NotPassedThrough(f"HTML link in {token!r}")
        found[key] = value
    if list(found) == sorted(found):
        return token
    ordered = "".join(f' {key}="{found[key]}"' for key in sorted(found))
    return f"<{name}{ordered}{self_closing or ''}>"


def _scheme(url: str) -> str | None:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return None


def respelled(fragment: str, passed: str) -> bool:
    """True when feedparser gives ``fragment`` back spelled differently (the same HTML tree);
    ``passed`` is what :func:`feedparser_html` made of it."""
    return passed != fragment or _RESPELLED.search(fragment) is not None


class NotPassedThrough(ValueError):
    """The HTML holds something feedparser's sanitiser would change; the message says what."""
