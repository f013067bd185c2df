"""HTML helpers shared by source kinds: sanitised HTML for display, plain text for matching."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3
from selectolax.lexbor import LexborHTMLParser

# Elements whose content is never text a reader sees.
_INVISIBLE = ["script", "style", "noscript", "template", "iframe", "object", "svg", "head"]
# Elements that start a new line when rendered; text on either side must not run together.
_BLOCKS = (
    "address,article,aside,blockquote,br,dd,div,dl,dt,figcaption,figure,footer,h1,h2,h3,h4,h5,"
    "h6,header,hr,li,main,nav,ol,p,pre,section,table,td,th,tr,ul"
)

# Private-use characters marking line breaks while the text is flattened: not whitespace, so
# normalising the source's whitespace leaves them, and stripped from the input beforehand.
_HARD_BREAK = "\ue000"
_SOFT_BREAK = "\ue001"
_BREAK_RUN = re.compile(f" ?[{_HARD_BREAK}{_SOFT_BREAK}][ {_HARD_BREAK}{_SOFT_BREAK}]*")

_URL_ATTRIBUTES = ("href", "src", "cite", "poster")
_URL_SELECTOR = ",".join(f"[{name}]" for name in _URL_ATTRIBUTES)


def sanitize_html(fragment: str) -> str:
    """``fragment`` with scripts, event handlers and unsafe URLs removed, safe to render."""
    return nh3.clean(
        fragment,
        clean_content_tags={"script", "style"},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def absolutize_urls(fragment: str, base_url: str) -> str:
    """``fragment`` with relative link, image and citation URLs resolved against ``base_url``."""
    if "<" not in fragment:
        return fragment
    tree = LexborHTMLParser(fragment)
    changed = False
    for node in tree.css(_URL_SELECTOR):
        for name in _URL_ATTRIBUTES:
            value = node.attributes.get(name)
            if value is None:
                continue
            absolute = urljoin(base_url, value.strip())
            if absolute != value:
                node.attrs[name] = absolute
                changed = True
    if not changed or tree.body is None:
        return fragment
    return tree.body.inner_html or ""


def html_to_text(fragment: str) -> str:
    """The visible text of an HTML fragment: entities decoded, whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:
        return normalize_whitespace(fragment)
    tree = LexborHTMLParser(fragment)
    tree.strip_tags(_INVISIBLE)
    for node in tree.css(_BLOCKS):
        node.insert_before(" ")
        node.insert_after(" ")
    root = tree.body or tree.root
    if root is None:
        return ""
    return normalize_whitespace(root.text(separator=""))


def html_to_multiline_text(fragment: str) -> str:
    """The visible text of an HTML fragment with its line breaks kept: ``<br>`` and block
    boundaries become newlines, other whitespace runs one space, at most one blank line in a row.

    For messages whose line breaks carry meaning (a chat post's list, its signature line), where
    :func:`html_to_text` would run the lines together.
    """
    tree = LexborHTMLParser(fragment.replace(_HARD_BREAK, "").replace(_SOFT_BREAK, ""))
    tree.strip_tags(_INVISIBLE)
    for node in tree.css("br"):
        node.insert_after(_HARD_BREAK)
    for node in tree.css(_BLOCKS):
        if node.tag != "br":
            node.insert_before(_SOFT_BREAK)
            node.insert_after(_SOFT_BREAK)
    root = tree.body or tree.root
    if root is None:
        return ""
    # Source whitespace (a pretty-printed page's newlines and indents) is one space, as a
    # browser renders it; only the markers stand for line breaks.
    flat = normalize_whitespace(root.text(separator=""))
    return _BREAK_RUN.sub(_breaks, flat).strip()


def _breaks(run: re.Match[str]) -> str:
    """The newlines a run of break markers stands for: one per ``<br>``, one to two in all."""
    hard = run.group(0).count(_HARD_BREAK)
    return "\n" * min(max(hard, 1), 2)


def text_to_html(text: str) -> str:
    """Plain text as an HTML fragment: escaped, with line breaks kept as paragraphs."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs if p)


def normalize_whitespace(text: str) -> str:
    """``text`` with every run of whitespace (non-breaking spaces included) made one space."""
    return " ".join(text.split())
