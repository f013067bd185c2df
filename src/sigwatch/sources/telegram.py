"""Public Telegram channels, read from their web preview (``t.me/s/<channel>``).

The preview is the HTML page Telegram serves to browsers without an account: the channel's
latest messages (about twenty), and a link to the page before the oldest of them. No token is
needed, and nothing but public channels can be read this way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode

from sigwatch.errors import ParseError
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.text import (
    absolutize_urls,
    html_to_multiline_text,
    html_to_text,
    normalize_whitespace,
    sanitize_html,
)

#: Where posts link to, whatever address the preview was fetched from (a test server, a mirror).
PUBLIC_URL = "https://t.me"
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_]{5,32}")
_TELEGRAM_HOSTS = frozenset({"t.me", "www.t.me", "telegram.me", "www.telegram.me"})
_BACKGROUND_URL = re.compile(r"background-image\s*:\s*url\(\s*(['\"]?)(.*?)\1\s*\)", re.I)
_COUNT = re.compile(r"(\d+(?:[.,]\d+)?)\s*([KMB]?)", re.I)
_MULTIPLIERS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def normalize_channel(value: str) -> str:
    """The channel name in ``value``: a bare name, ``@name`` or a t.me address of the channel.

    ValueError saying what is accepted when ``value`` is none of these, or names an invite link
    (a private channel, which the web preview cannot show).
    """
    given = value.strip()
    name = given.removeprefix("@")
    if "/" in given or "." in given:
        name = _channel_from_url(given)
    if not _CHANNEL_NAME.fullmatch(name):
        raise ValueError(
            "must be a public channel's name, 5 to 32 letters, digits or underscores "
            "(`durov`, `@durov` or `https://t.me/durov`)"
        )
    return name


def _channel_from_url(value: str) -> str:
    parts = urlsplit(value if "://" in value else f"https://{value}")
    if (parts.hostname or "").lower() not in _TELEGRAM_HOSTS:
        raise ValueError("must be a channel name or a t.me address, such as https://t.me/durov")
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and segments[0] == "s":
        segments = segments[1:]
    if not segments or segments[0].startswith("+") or segments[0] == "joinchat":
        raise ValueError(
            "is an invite link or has no channel name: sigwatch reads only public channels, "
            "give the channel's public name (https://t.me/<name>)"
        )
    return segments[0]


class TelegramOptions(BaseModel):
    """Options of a Telegram channel source."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        description=(
            "The public channel's name, 5 to 32 letters, digits or underscores; `@name` and "
            "`https://t.me/name` are accepted and reduced to the name."
        )
    )

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, value: str) -> str:
        return normalize_channel(value)

    def origin(self) -> str:
        """``telegram:<channel>``, lower-cased: Telegram's names ignore case."""
        return f"telegram:{self.channel.lower()}"


@dataclass(slots=True)
class PreviewPage:
    """The messages of one preview page, and the id the next older page starts before."""

    posts: list[CollectedPost]
    older_before: int | None
    channel_title: str | None = None
    warnings: list[str] = field(default_factory=list)


class TelegramSource:
    """Collects the messages of a public Telegram channel from its web preview (t.me/s/<name>).

    Each poll reads the newest page; a backfill pages back with ``?before=<id>``. Edited
    messages come back with their new text and replace the stored post.
    """

    kind: ClassVar[str] = "telegram"
    Options: ClassVar[type[BaseModel]] = TelegramOptions

    def __init__(
        self, options: TelegramOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client
        self.platforms = platforms or Platforms()

    def preview_url(self, before: int | None = None) -> str:
        """The address of the channel's preview page, or of the page before message ``before``."""
        url = f"{self.platforms.telegram_url.rstrip('/')}/s/{self.options.channel}"
        return url if before is None else f"{url}?before={before}"

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The newest page of messages; warns when more were posted since the last poll than
        one page holds, so a backfill can fetch what lies between."""
        page = await self._read_page(None)
        new_state = dict(state)
        warnings = list(page.warnings)
        ids = [_message_id(post) for post in page.posts]
        previous = state.get("newest_id")
        if ids:
            if isinstance(previous, int) and previous not in ids and min(ids) > previous + 1:
                warnings.append(
                    f"more than one page of messages since the last poll: messages after "
                    f"{previous} and before {min(ids)} were not read; run a backfill to fetch "
                    "them, or poll this source more often"
                )
            new_state["newest_id"] = max([*ids, previous if isinstance(previous, int) else 0])
        return FetchResult(posts=page.posts, state=new_state, warnings=warnings)

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page of messages before ``cursor["before"]`` (None: the newest page); its cursor
        is None once the channel's first message is reached."""
        before = _cursor_before(cursor)
        page = await self._read_page(before)
        older = page.older_before
        if not page.posts or older is None or (before is not None and older >= before):
            return BackfillPage(posts=page.posts, cursor=None)
        return BackfillPage(posts=page.posts, cursor={"before": older})

    async def _read_page(self, before: int | None) -> PreviewPage:
        response = await self.client.get(self.preview_url(before))
        return parse_preview(response, self.options.channel)


def _cursor_before(cursor: dict[str, Any] | None) -> int | None:
    if cursor is None:
        return None
    before = cursor.get("before")
    if isinstance(before, int) and not isinstance(before, bool) and before > 0:
        return before
    raise ParseError(
        f"the backfill cursor {cursor!r} has no message id to page back from: start the "
        "backfill again from the newest messages"
    )


def _message_id(post: CollectedPost) -> int:
    return int(post.external_id.rpartition("/")[2])


def parse_preview(response: FetchedResponse, channel: str) -> PreviewPage:
    """The messages of a fetched preview page, newest last as Telegram lists them.

    ParseError when the page is no channel preview: Telegram answers a private or unknown
    channel with its join page (often after a redirect), which has no message history.
    """
    text = response.body.decode("utf-8", errors="replace")
    tree = LexborHTMLParser(text)
    nodes = tree.css("div.tgme_widget_message[data-post]")
    if not nodes and tree.css_first(".tgme_channel_history") is None:
        raise ParseError(_not_a_preview_message(response, channel))
    title = _channel_title(tree)
    posts: list[CollectedPost] = []
    seen: set[str] = set()
    unreadable = 0
    for node in nodes:
        post = message_to_post(node)
        if post is None:
            unreadable += 1
        elif post.external_id not in seen:
            seen.add(post.external_id)
            if title and "channel_title" not in post.raw:
                post.raw["channel_title"] = title
            posts.append(post)
    warnings = []
    if unreadable:
        warnings.append(
            f"skipped {unreadable} message{'' if unreadable == 1 else 's'} without a readable "
            f"id (a cut-off page?); kept {len(posts)}"
        )
    return PreviewPage(
        posts=posts,
        older_before=_older_before(tree),
        channel_title=title,
        warnings=warnings,
    )


def _not_a_preview_message(response: FetchedResponse, channel: str) -> str:
    redirected = "/s/" not in urlsplit(response.url).path
    where = f" (redirected to {redact_url(response.url)})" if redirected else ""
    return (
        f"t.me/s/{channel} is not a channel preview{where}: the channel may be private or may "
        f"not exist. Check the name at {PUBLIC_URL}/{channel}; sigwatch reads only public "
        "channels"
    )


def _older_before(tree: LexborHTMLParser) -> int | None:
    """The id the page of older messages starts before, from the page's "more" link."""
    link = tree.css_first("a.tme_messages_more[data-before]")
    value = link.attributes.get("data-before") if link is not None else None
    return int(value) if value and value.isdigit() else None


def _channel_title(tree: LexborHTMLParser) -> str | None:
    node = tree.css_first(".tgme_channel_info_header_title")
    if node is not None:
        return normalize_whitespace(node.text()) or None
    meta = tree.css_first('meta[property="og:title"]')
    content = meta.attributes.get("content") if meta is not None else None
    return normalize_whitespace(content) if content else None


def message_to_post(node: LexborNode) -> CollectedPost | None:
    """One message widget as a post; None when it has no ``channel/id`` to name it by."""
    channel, _, number = (node.attributes.get("data-post") or "").strip().rpartition("/")
    if not channel or not number.isdigit():
        return None
    text_node = node.css_first(".tgme_widget_message_bubble > .tgme_widget_message_text")
    text_html = (text_node.inner_html or "") if text_node is not None else ""
    page_url = f"{PUBLIC_URL}/s/{channel}"
    signature = _text_of(node, ".tgme_widget_message_from_author")
    edited = _is_edited(node)
    raw: dict[str, Any] = {
        "channel": channel,
        "id": int(number),
        "html": node.html or "",
        "edited": edited,
        "links": _links(text_node, node, page_url),
        "media": _media(node),
    }
    owner = _text_of(node, ".tgme_widget_message_owner_name")
    optional = {
        "channel_title": owner,
        "signature": signature,
        "forwarded_from": _forwarded_from(node),
        "link_preview": _link_preview(node),
        "poll": _poll(node),
    }
    raw.update({key: value for key, value in optional.items() if value})
    views = parse_count(_text_of(node, ".tgme_widget_message_views") or "")
    metrics: dict[str, Any] = {"edited": edited}
    if views is not None:
        metrics["views"] = views
    return CollectedPost(
        external_id=f"{channel}/{number}",
        text=html_to_multiline_text(text_html) if text_html else "",
        url=f"{PUBLIC_URL}/{channel}/{number}",
        author=signature or channel,
        html=sanitize_html(absolutize_urls(text_html, page_url)) if text_html.strip() else None,
        published_at=_published_at(node),
        metrics=metrics,
        raw=raw,
    )


def parse_count(text: str) -> int | None:
    """A count as the preview shows it (``746``, ``1.2K``, ``3M``) as a number; None if none."""
    match = _COUNT.search(text.replace(",", ".").replace("\xa0", ""))
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    return int(number * _MULTIPLIERS[match.group(2).upper()])


def _text_of(node: LexborNode, selector: str) -> str | None:
    # Through html_to_text, so a <br> between two lines leaves a space rather than nothing.
    found = node.css_first(selector)
    return (html_to_text(found.inner_html or "") or None) if found is not None else None


def _is_edited(node: LexborNode) -> bool:
    """Whether the footer says "edited": a text of the meta line itself, not of its children
    (a signature may contain the word)."""
    meta = node.css_first(".tgme_widget_message_meta")
    if meta is None:
        return False
    return any(
        child.tag == "-text" and "edited" in (child.text(deep=False) or "").lower()
        for child in meta.iter(include_text=True)
    )


def _published_at(node: LexborNode) -> datetime | None:
    stamp = node.css_first(".tgme_widget_message_date time[datetime]") or node.css_first(
        ".tgme_widget_message_meta time[datetime]"
    )
    value = stamp.attributes.get("datetime") if stamp is not None else None
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _http_url(value: str | None, base: str) -> str | None:
    if not value or not value.strip():
        return None
    url = urljoin(base, value.strip())
    return url if urlsplit(url).scheme in ("http", "https") else None


def _links(text_node: LexborNode | None, node: LexborNode, base: str) -> list[str]:
    """The links of the message's text, then its link preview's, each once, in order."""
    anchors = text_node.css("a[href]") if text_node is not None else []
    preview = node.css_first("a.tgme_widget_message_link_preview[href]")
    links: list[str] = []
    for anchor in [*anchors, *([preview] if preview is not None else [])]:
        url = _http_url(anchor.attributes.get("href"), base)
        if url is not None and url not in links:
            links.append(url)
    return links


def _background_url(node: LexborNode) -> str | None:
    match = _BACKGROUND_URL.search(node.attributes.get("style") or "")
    return _http_url(match.group(2), PUBLIC_URL) if match else None


def _media(node: LexborNode) -> list[dict[str, str]]:
    """The message's own photos, videos, voice notes, stickers and documents (not those of a
    link preview, which belong to the linked page)."""
    media: list[dict[str, str]] = []
    for photo in node.css(".tgme_widget_message_photo_wrap"):
        url = _background_url(photo)
        if url is not None:
            media.append({"type": "photo", "url": url})
    for kind, selector in (
        ("video", "video.tgme_widget_message_video[src]"),
        ("round_video", "video.tgme_widget_message_roundvideo[src]"),
        ("voice", "audio.tgme_widget_message_voice[src]"),
    ):
        for player in node.css(selector):
            url = _http_url(player.attributes.get("src"), PUBLIC_URL)
            if url is not None:
                media.append({"type": kind, "url": url})
    for source in node.css(".tgme_widget_message_sticker_wrap source[srcset]"):
        url = _http_url(source.attributes.get("srcset"), PUBLIC_URL)
        if url is not None:
            media.append({"type": "sticker", "url": url})
    for document in node.css("a.tgme_widget_message_document_wrap"):
        entry = {"type": "document"}
        url = _http_url(document.attributes.get("href"), PUBLIC_URL)
        if url is not None:
            entry["url"] = url
        for key, selector in (
            ("name", ".tgme_widget_message_document_title"),
            ("size", ".tgme_widget_message_document_extra"),
        ):
            value = _text_of(document, selector)
            if value:
                entry[key] = value
        media.append(entry)
    return media


def _forwarded_from(node: LexborNode) -> dict[str, str] | None:
    found = node.css_first(".tgme_widget_message_forwarded_from_name")
    if found is None:
        return None
    forwarded = {"name": normalize_whitespace(found.text())}
    url = _http_url(found.attributes.get("href"), PUBLIC_URL)
    if url is not None:
        forwarded["url"] = url
    return forwarded


def _link_preview(node: LexborNode) -> dict[str, str] | None:
    found = node.css_first("a.tgme_widget_message_link_preview")
    if found is None:
        return None
    preview: dict[str, str] = {}
    url = _http_url(found.attributes.get("href"), PUBLIC_URL)
    if url is not None:
        preview["url"] = url
    for key, selector in (
        ("site_name", ".link_preview_site_name"),
        ("title", ".link_preview_title"),
        ("description", ".link_preview_description"),
    ):
        value = _text_of(found, selector)
        if value:
            preview[key] = value
    image = found.css_first(".link_preview_image")
    image_url = _background_url(image) if image is not None else None
    if image_url is not None:
        preview["image"] = image_url
    return preview


def _poll(node: LexborNode) -> dict[str, Any] | None:
    found = node.css_first(".tgme_widget_message_poll")
    if found is None:
        return None
    options = [
        {
            "text": _text_of(option, ".tgme_widget_message_poll_option_text") or "",
            "percent": _text_of(option, ".tgme_widget_message_poll_option_percent") or "",
        }
        for option in found.css(".tgme_widget_message_poll_option")
    ]
    return {"question": _text_of(found, ".tgme_widget_message_poll_question"), "options": options}
