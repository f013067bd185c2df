"""Any web page as a list of posts, picked out with CSS selectors (selectolax).

``item`` selects each post's element on the page; ``title``, ``link``, ``date`` and ``text``
select within it, and ``sel@attr`` reads an attribute instead of the text (``a@href``,
``time@datetime``; ``@href`` alone reads the item's own). robots.txt is obeyed, read once an
hour per host, and fetches are conditional (ETag, Last-Modified), as for feeds.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from protego import Protego
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from sigwatch.errors import FetchError, HTTPStatusError, ParseError
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url, url_problem
from sigwatch.net.urls import normalised_url
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.render import render_page, require_playwright
from sigwatch.sources.rss import MAX_URL_CHARS
from sigwatch.sources.text import absolutize_urls, html_to_text, sanitize_html

#: How long a host's robots.txt is trusted before it is read again.
ROBOTS_TTL_S = 3600.0
#: The most characters of an item's HTML kept in a post's raw record.
MAX_RAW_HTML_CHARS = 20_000
MAX_SELECTOR_CHARS = 500
_ATTRIBUTE = re.compile(r"[A-Za-z_:][-A-Za-z0-9_:.]*")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w:.]+)""", re.I)
_ORDINAL = re.compile(r"(?<=\d)(st|nd|rd|th)\b", re.I)
_WEEKDAY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.I)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
#: Date forms read besides ISO 8601 and RFC 2822; day-first and month-first numeric dates
#: (03/12/2025) are ambiguous and left unread.
_DATE_FORMATS = tuple(
    f"{day}{clock}"
    for day in (
        "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y",
        "%d %b, %Y", "%d %B, %Y", "%Y/%m/%d", "%d.%m.%Y", "%Y-%m-%d",
    )
    for clock in ("", " %H:%M", " %H:%M:%S", " %I:%M %p", ", %H:%M", ", %I:%M %p")
)  # fmt: skip
#: robots.txt by its URL, with when it was read (time.monotonic()).
_robots_cache: dict[str, tuple[float, RobotsRules]] = {}


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A selector option read: the CSS selector (None: the item itself) and the attribute."""

    css: str | None
    attribute: str | None


def parse_selector(spec: str) -> FieldSelector:
    """``"a@href"`` → css ``a``, attribute ``href``; an ``@`` inside the CSS is left alone."""
    css, at, attribute = spec.rpartition("@")
    if at and _ATTRIBUTE.fullmatch(attribute):
        return FieldSelector(css.strip() or None, attribute.lower())
    return FieldSelector(spec.strip(), None)


def _check_css(css: str) -> None:
    try:
        LexborHTMLParser("<p></p>").css(css)
    except SelectolaxError:
        raise ValueError(
            "is not a CSS selector selectolax can read, e.g. `article`, `h2 a`, `a@href`"
        ) from None


class WebOptions(BaseModel):
    """Options of a web page source."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The page's URL, http:// or https://.")
    item: str = Field(
        description="CSS selector of each post on the page, e.g. `article` or `ul.news > li`."
    )
    title: str | None = Field(
        None,
        description=(
            "Selector of the title within an item, e.g. `h2`; `sel@attr` reads an attribute "
            "instead of the text."
        ),
    )
    link: str | None = Field(
        None,
        description=(
            "Selector of the post's link within an item, e.g. `a` (its `href` is read) or "
            "`a.more@href`; `@href` reads the item's own. Relative links are made absolute."
        ),
    )
    date: str | None = Field(
        None,
        description=(
            "Selector of the date within an item, e.g. `time` (its `datetime` attribute when "
            "it has one) or `.date`; ISO 8601, RFC 2822 and forms like `Dec 3, 2025` are read."
        ),
    )
    text: str | None = Field(
        None,
        description="Selector of the post's text within an item, e.g. `p`; every match is kept.",
    )
    render: bool = Field(
        False,
        description=(
            "Render the page in a headless Chromium first, for pages whose items are built by "
            "JavaScript; needs the `render` extra (Playwright) and Chromium."
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
            raise ValueError("must be an http:// or https:// URL, e.g. https://example.com/news")
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("item")
    @classmethod
    def _check_item(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > MAX_SELECTOR_CHARS:
            raise ValueError(f"must be a CSS selector of 1 to {MAX_SELECTOR_CHARS} characters")
        if parse_selector(value).attribute is not None:
            raise ValueError("selects elements, so it takes no `@attribute`")
        _check_css(value)
        return value

    @field_validator("title", "link", "date", "text")
    @classmethod
    def _check_field_selector(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if len(value) > MAX_SELECTOR_CHARS:
            raise ValueError(f"must be at most {MAX_SELECTOR_CHARS} characters")
        selector = parse_selector(value)
        if selector.css is not None:
            _check_css(selector.css)
        return value

    @model_validator(mode="after")
    def _check_something_to_read(self) -> WebOptions:
        if self.title is None and self.text is None:
            raise ValueError("give `title` or `text` (or both): a post needs something to read")
        return self

    def origin(self) -> str:
        """The page's URL normalised as a feed's is, then the item selector."""
        return f"{normalised_url(self.url)} {self.item}"


class WebSource:
    """Collects the items of one web page, picked out with CSS selectors.

    One post per item, in page order; robots.txt is obeyed and fetches are conditional.
    """

    kind: ClassVar[str] = "web"
    Options: ClassVar[type[BaseModel]] = WebOptions

    def __init__(
        self, options: WebOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        if options.render:
            require_playwright()
        self.options = options
        self.client = client
        self.browser_path = platforms.browser_path if platforms is not None else None

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The page's items, unless it is unchanged since ``state`` or robots.txt refuses it.

        A rendered page is fetched whole each time: what its scripts build has no validators.
        """
        await self._check_robots()
        headers: dict[str, str] = {}
        if state.get("etag"):
            headers["If-None-Match"] = str(state["etag"])
        if state.get("last_modified"):
            headers["If-Modified-Since"] = str(state["last_modified"])
        response = await self._page(headers)
        new_state = _validators(state, response)
        if response.status == 304:
            return FetchResult(posts=[], state=new_state, not_modified=True)
        posts, warnings = self._read_page(response, matched_before=bool(state.get("matched")))
        if posts:
            new_state["matched"] = True
        return FetchResult(posts=posts, state=new_state, warnings=warnings)

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page's items, in full: a web page has no older pages to reach (cursor None)."""
        await self._check_robots()
        response = await self._page({})
        posts, _ = self._read_page(response, matched_before=bool(state.get("matched")))
        return BackfillPage(posts=posts, cursor=None)

    async def _page(self, headers: dict[str, str]) -> FetchedResponse:
        """The page as served, or as a headless browser shows it once its scripts ran."""
        if self.options.render:
            return await render_page(self.options.url, self.client, browser_path=self.browser_path)
        return await self.client.get(self.options.url, headers=headers)

    def _read_page(
        self, response: FetchedResponse, *, matched_before: bool
    ) -> tuple[list[CollectedPost], list[str]]:
        tree = LexborHTMLParser(_decode_html(response))
        base_url = _base_url(tree, response.url)
        items = tree.css(self.options.item)
        if not items:
            problem = (
                f"selector matched no items: `item` ({self.options.item}) found nothing on "
                f"{redact_url(response.url)}; check it against the page's HTML as served "
                "(a page built by JavaScript shows its items only in a browser)"
            )
            # A selector that never matched is a mistake to fix now; a page that matched before
            # may be empty for a while or redesigned, which is worth a warning, not a failure.
            if not matched_before:
                raise ParseError(problem)
            return [], [problem]
        return self._items_to_posts(items, base_url)

    def _items_to_posts(
        self, items: list[LexborNode], base_url: str
    ) -> tuple[list[CollectedPost], list[str]]:
        posts: dict[str, CollectedPost] = {}
        empty = 0
        bad_dates: list[str] = []
        for item in items:
            post, raw_date = item_to_post(item, self.options, base_url)
            if post is None:
                empty += 1
                continue
            if raw_date and post.published_at is None:
                bad_dates.append(raw_date)
            # One link listed twice (a teaser and a headline) is one post: the first wins.
            posts.setdefault(post.external_id, post)
        warnings = []
        if empty:
            warnings.append(
                f"skipped {empty} item(s) where neither `title` nor `text` selected anything"
            )
        if bad_dates:
            warnings.append(
                f"could not read the date of {len(bad_dates)} item(s) (e.g. {bad_dates[0]!r}); "
                "they are dated when first seen: point `date` at a machine-readable date "
                "(`time@datetime`) if the page has one"
            )
        return list(posts.values()), warnings

    async def _check_robots(self) -> None:
        """Raise FetchError naming the rule when robots.txt refuses the page to sigwatch."""
        agent = _user_agent(self.client)
        rules = await robots_rules(self.client, self.options.url)
        if rules.parser.can_fetch(self.options.url, agent):
            return
        parts = urlsplit(self.options.url)
        path = parts.path or "/"
        rule = refusing_rule(rules.text, self.options.url, agent)
        said = f" ({rule})" if rule else ""
        raise FetchError(
            f"robots.txt of {parts.hostname} disallows {path} for {_product(agent)}{said}: "
            "sigwatch obeys robots.txt; watch a page the site allows (its RSS feed, if it has "
            "one) or ask the site to allow sigwatch"
        )


def item_to_post(
    item: LexborNode, options: WebOptions, base_url: str
) -> tuple[CollectedPost | None, str | None]:
    """One item as a post (None when neither title nor text gives anything), and its raw date."""
    title = _read_text(item, options.title)
    text_nodes = _select_all(item, options.text)
    text = _joined_text(text_nodes, options.text)
    if not title and not text:
        return None, None
    link = _read_link(item, options.link, base_url)
    raw_date = _read_text(item, options.date, default_attribute="datetime")
    html = None
    if text_nodes and parse_selector(options.text or "").attribute is None:
        html = sanitize_html(absolutize_urls("".join(n.html or "" for n in text_nodes), base_url))
    post = CollectedPost(
        external_id=link or _text_hash(item),
        text=text,
        url=link,
        title=title or None,
        html=html or None,
        published_at=parse_date(raw_date) if raw_date else None,
        raw=_raw(item, title=title, link=link, date=raw_date),
    )
    return post, raw_date


def _text_hash(item: LexborNode) -> str:
    """An id for an item without a link: the digest of its visible text."""
    return f"sha256:{hashlib.sha256(_node_text(item).encode()).hexdigest()}"


def parse_date(text: str) -> datetime | None:
    """A date as pages write it, in UTC (no zone: UTC); None when it cannot be read."""
    text = " ".join(text.split())
    if not text:
        return None
    moment = _iso_or_rfc2822(text)
    if moment is None:
        cleaned = _WEEKDAY.sub("", _ORDINAL.sub("", text)).replace("Sept", "Sep")
        cleaned = re.sub(r"\s+(UTC|GMT|Z)$", "", cleaned.replace(" at ", " "))
        for form in _DATE_FORMATS:
            try:
                moment = datetime.strptime(cleaned, form)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso_or_rfc2822(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """A host's robots.txt, parsed, and its text (to name the rule that refuses)."""

    parser: Protego
    text: str


async def robots_rules(client: OutboundClient, page_url: str) -> RobotsRules:
    """The robots.txt of ``page_url``'s host, cached for :data:`ROBOTS_TTL_S`.

    A 4xx answer (no robots.txt) allows everything, as RFC 9309 says; a 5xx or 429 cannot be
    read as permission, so it is an HTTPStatusError the source retries later.
    """
    parts = urlsplit(page_url)
    robots_url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/robots.txt"
    cached = _robots_cache.get(robots_url)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ROBOTS_TTL_S:
        return cached[1]
    try:
        response = await client.get(robots_url)
        text = response.body.decode("utf-8", errors="replace")
    except HTTPStatusError as exc:
        if exc.retryable:
            raise HTTPStatusError(
                f"robots.txt of {parts.hostname} could not be read (HTTP {exc.status}): sigwatch "
                "fetches no page of a site until its robots.txt can be read, and tries again later",
                status=exc.status,
                retry_after_s=exc.retry_after_s,
                rate_limit_reset_s=exc.rate_limit_reset_s,
                rate_limit_exhausted=exc.rate_limited,
            ) from None
        text = ""
    rules = RobotsRules(Protego.parse(text), text)
    for url in [url for url, entry in _robots_cache.items() if now - entry[0] >= ROBOTS_TTL_S]:
        del _robots_cache[url]
    _robots_cache[robots_url] = (now, rules)
    return rules


def refusing_rule(robots_txt: str, url: str, agent: str) -> str | None:
    """The most specific ``Disallow`` line of ``robots_txt`` that alone refuses ``url``."""
    refusing: list[str] = []
    for line in robots_txt.splitlines():
        field, _, value = line.split("#", 1)[0].partition(":")
        value = value.strip()
        if field.strip().lower() != "disallow" or not value:
            continue
        if not Protego.parse(f"User-agent: *\nDisallow: {value}\n").can_fetch(url, agent):
            refusing.append(value)
    return f"Disallow: {max(refusing, key=len)}" if refusing else None


def _select_all(item: LexborNode, spec: str | None) -> list[LexborNode]:
    if spec is None:
        return []
    selector = parse_selector(spec)
    if selector.css is None:
        return [item]
    # Lexbor matches the item itself too; the selectors are meant within it.
    return [node for node in item.css(selector.css) if node != item]


def _read_text(
    item: LexborNode, spec: str | None, *, default_attribute: str | None = None
) -> str | None:
    """What the first match of ``spec`` in ``item`` says: its attribute, else its text."""
    nodes = _select_all(item, spec)
    if spec is None or not nodes:
        return None
    attribute = parse_selector(spec).attribute
    if attribute is not None:
        value = nodes[0].attributes.get(attribute) or ""
    else:
        fallback = nodes[0].attributes.get(default_attribute) if default_attribute else None
        value = fallback or _node_text(nodes[0])
    return " ".join(value.split()) or None


def _joined_text(nodes: list[LexborNode], spec: str | None) -> str:
    attribute = parse_selector(spec or "").attribute
    if attribute:
        values = [node.attributes.get(attribute) or "" for node in nodes]
        return " ".join(" ".join(values).split())
    return " ".join(_node_text(node) for node in nodes).strip()


def _node_text(node: LexborNode) -> str:
    """The visible text of ``node``; a head element's (``<title>``) plain text.

    html_to_text reads a fragment as a page would show it, and a page shows nothing of its
    head, so the text of a selected ``<title>`` comes from the node itself.
    """
    return html_to_text(node.html or "") or " ".join(node.text(deep=True).split())


def _read_link(item: LexborNode, spec: str | None, base_url: str) -> str | None:
    nodes = _select_all(item, spec)
    if not nodes:
        return None
    href = nodes[0].attributes.get(parse_selector(spec or "").attribute or "href")
    if not href or not href.strip():
        return None
    url = urljoin(base_url, href.strip()).split("#", 1)[0]
    # Links end up as anchors in the dashboard and alerts; javascript: and data: must not.
    return url if urlsplit(url).scheme in ("http", "https") else None


def _raw(item: LexborNode, **found: str | None) -> dict[str, Any]:
    html = item.html or ""
    raw: dict[str, Any] = {name: value for name, value in found.items() if value}
    raw["html"] = html[:MAX_RAW_HTML_CHARS]
    if len(html) > MAX_RAW_HTML_CHARS:
        raw["html_truncated"] = True
    return raw


def _base_url(tree: LexborHTMLParser, page_url: str) -> str:
    """The URL relative links resolve against: the page's ``<base href>``, else its own."""
    base = tree.css_first("base[href]")
    href = base.attributes.get("href") if base is not None else None
    return urljoin(page_url, href.strip()) if href and href.strip() else page_url


def _decode_html(response: FetchedResponse) -> str:
    """The page as text: the Content-Type's charset, else a ``<meta charset>``, else UTF-8."""
    content_type = response.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime not in _HTML_TYPES and not mime.startswith("text/"):
        raise ParseError(
            f"{redact_url(response.url)} is not an HTML page ({mime}): give the address of "
            "the page that lists the posts"
        )
    charset = re.search(r"charset\s*=\s*[\"']?([-\w:.]+)", content_type, re.I)
    sniffed = _CHARSET.search(response.body[:4096])
    for candidate in (charset and charset.group(1), sniffed and sniffed.group(1).decode()):
        if candidate:
            try:
                return response.body.decode(candidate, errors="replace")
            except LookupError:
                continue
    return response.body.decode("utf-8-sig", errors="replace")


def _validators(state: dict[str, Any], response: FetchedResponse) -> dict[str, Any]:
    """``state`` with the answer's ETag and Last-Modified, for the next conditional fetch."""
    new_state = dict(state)
    for key, header in (("etag", "etag"), ("last_modified", "last-modified")):
        value = response.headers.get(header)
        if value:
            new_state[key] = value
        elif response.status != 304:
            new_state.pop(key, None)
    return new_state


def _user_agent(client: OutboundClient) -> str:
    """The User-Agent the client sends, which robots.txt groups are matched against."""
    return client.user_agent or "sigwatch"


def _product(agent: str) -> str:
    """The product token of a User-Agent (``sigwatch`` of ``sigwatch/0.1 (…)``)."""
    return agent.split("/", 1)[0].split()[0] if agent.strip() else "sigwatch"
