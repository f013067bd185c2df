"""Discord channels: a channel's messages through the bot REST API, newest first, then paged.

Polls ask for the messages after the newest one seen (``after=``), re-reading the last
:data:`EDIT_WINDOW` messages on the way so that an edit of a recent message reaches storage,
which updates a post whose text changed. A backfill pages back with ``before=``. The channel's
server (guild) is learnt once from ``GET /channels/{id}`` and kept in the state: it is part of
every message link.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sigwatch.errors import HTTPStatusError, ParseError, SourcePaused
from sigwatch.net.client import FetchedResponse, OutboundClient
from sigwatch.net.retry_after import parse_rate_limit_reset, rate_limit_exhausted
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.text import normalize_whitespace, text_to_html

#: The most messages Discord returns in one page.
PAGE_LIMIT = 100
#: Pages one poll reads at most when a channel got busy; the rest waits for the next poll.
MAX_PAGES_PER_POLL = 5
#: Recent messages every poll reads again, so their edits are seen.
EDIT_WINDOW = 20
#: Discord's link to a message; ``@me`` stands for direct messages, which have no server.
MESSAGE_URL = "https://discord.com/channels/{guild}/{channel}/{message}"
_SNOWFLAKE = re.compile(r"[0-9]{17,20}")
_DIRECT_MESSAGES = "@me"


class DiscordOptions(BaseModel):
    """Options of a Discord channel source."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str = Field(
        description=(
            "The channel's id, a snowflake of 17 to 20 digits (Discord: User Settings → "
            "Advanced → Developer Mode, then right-click the channel → Copy Channel ID)."
        )
    )
    bot_token: SecretStr = Field(
        description=(
            "The bot's token (Developer Portal → your application → Bot → Reset Token); the "
            "bot must be in the channel's server with View Channel and Read Message History."
        )
    )

    @field_validator("channel_id", mode="before")
    @classmethod
    def _check_channel_id(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not _SNOWFLAKE.fullmatch(value):
            raise ValueError(
                "must be a Discord channel id, 17 to 20 digits (turn on Developer Mode, "
                "right-click the channel and choose Copy Channel ID)"
            )
        return value

    @field_validator("bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        # People paste the whole header value; the prefix is sigwatch's to add.
        if token[:4].lower() == "bot ":
            token = token[4:].strip()
        if not token:
            raise ValueError("must not be blank: give the bot's token from the Developer Portal")
        if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in token):
            raise ValueError("must be the token alone: no spaces, line breaks or control chars")
        return SecretStr(token)

    def origin(self) -> str:
        """``discord:{channel_id}``: one channel is one origin, whichever bot reads it."""
        return f"discord:{self.channel_id}"


class DiscordSource:
    """Collects the messages of one Discord channel with a bot token (Discord's REST API).

    Each message is a post: its content and its embeds' text, its author, its link, its
    attachments and reaction count. Older messages are reachable by backfill.
    """

    kind: ClassVar[str] = "discord"
    Options: ClassVar[type[BaseModel]] = DiscordOptions

    def __init__(
        self, options: DiscordOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client
        self.api_url = (platforms or Platforms()).discord_api_url.rstrip("/")

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The messages after the newest seen (all of the newest page on a first poll)."""
        state = await self._with_guild(state)
        after = state.get("recheck_after") or state.get("newest_id")
        messages: list[dict[str, Any]] = []
        warnings: list[str] = []
        wait_s: float | None = None
        for _ in range(MAX_PAGES_PER_POLL):
            params = {"limit": str(PAGE_LIMIT)}
            if after:
                params["after"] = str(after)
            page, wait_s = await self._messages_page(params, warnings)
            messages.extend(page)
            # Without ``after`` Discord answers the newest page: older ones are a backfill's.
            if wait_s is not None or not after or len(page) < PAGE_LIMIT:
                break
            after = _newest_id(page)
        return FetchResult(
            posts=self._posts(messages, state),
            state=_next_state(state, messages),
            warnings=warnings,
            wait_s=wait_s,
        )

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page of messages before ``cursor["before"]`` (None: the newest page)."""
        known = await self._with_guild(state)
        params = {"limit": str(PAGE_LIMIT)}
        if cursor and cursor.get("before"):
            params["before"] = str(cursor["before"])
        page, _ = await self._messages_page(params, [])
        next_cursor = {"before": _oldest_id(page)} if len(page) >= PAGE_LIMIT else None
        return BackfillPage(
            posts=self._posts(page, known),
            cursor=next_cursor,
            state=known if known != state else None,
        )

    def _posts(self, messages: list[dict[str, Any]], state: dict[str, Any]) -> list[CollectedPost]:
        guild = str(state.get("guild_id") or _DIRECT_MESSAGES)
        ordered = sorted(messages, key=lambda message: int(message["id"]))
        posts = (message_to_post(message, guild, self.options.channel_id) for message in ordered)
        return [post for post in posts if post is not None]

    async def _with_guild(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with the channel's server id (``@me`` for direct messages), asked once."""
        if state.get("guild_id"):
            return state
        response = await self._get(f"/channels/{self.options.channel_id}", {})
        channel = _json(response, dict, "a channel object")
        guild = channel.get("guild_id")
        return {**state, "guild_id": str(guild) if guild else _DIRECT_MESSAGES}

    async def _messages_page(
        self, params: dict[str, str], warnings: list[str]
    ) -> tuple[list[dict[str, Any]], float | None]:
        """One page of messages, and how long to wait when it used up the rate limit."""
        response = await self._get(f"/channels/{self.options.channel_id}/messages", params)
        answer = _json(response, list, "a list of messages")
        page = [item for item in answer if _is_message(item)]
        if len(page) < len(answer):
            skipped = len(answer) - len(page)
            warnings.append(f"skipped {skipped} message(s) without a snowflake id from Discord")
        wait_s = None
        if rate_limit_exhausted(response.headers):
            wait_s = parse_rate_limit_reset(response.headers)
        return page, wait_s

    async def _get(self, path: str, params: dict[str, str]) -> FetchedResponse:
        url = f"{self.api_url}{path}" + (f"?{urlencode(params)}" if params else "")
        headers = {
            "Authorization": f"Bot {self.options.bot_token.get_secret_value()}",
            "Accept": "application/json",
        }
        try:
            return await self.client.get(url, headers=headers)
        except HTTPStatusError as exc:
            paused = _paused(exc, self.options.channel_id)
            if paused is None:
                raise
            raise paused from None


def message_to_post(message: dict[str, Any], guild: str, channel_id: str) -> CollectedPost | None:
    """One Discord message as a post; None for one with nothing to read (a join notice)."""
    parts = _text_parts(message)
    attachments = [
        str(item["url"])
        for item in message.get("attachments") or []
        if isinstance(item, dict) and item.get("url")
    ]
    if not parts and not attachments:
        return None
    channel = str(message.get("channel_id") or channel_id)
    metrics: dict[str, Any] = {"reactions": _reaction_count(message)}
    if attachments:
        metrics["attachments"] = attachments
    return CollectedPost(
        external_id=str(message["id"]),
        text=normalize_whitespace(" ".join(parts)),
        html=text_to_html("\n\n".join(parts)) if parts else None,
        url=MESSAGE_URL.format(guild=guild, channel=channel, message=message["id"]),
        author=_author(message),
        published_at=_timestamp(message.get("timestamp")),
        metrics=metrics,
        raw=message,
    )


def _text_parts(message: dict[str, Any]) -> list[str]:
    """The message's content, then each embed's title, description and fields, in order."""
    parts = [str(message.get("content") or "").strip()]
    for embed in message.get("embeds") or []:
        if not isinstance(embed, dict):
            continue
        parts.append(str(embed.get("title") or "").strip())
        parts.append(str(embed.get("description") or "").strip())
        for embed_field in embed.get("fields") or []:
            if isinstance(embed_field, dict):
                name = str(embed_field.get("name") or "").strip()
                value = str(embed_field.get("value") or "").strip()
                parts.append(f"{name}: {value}" if name and value else name or value)
    return [part for part in parts if part]


def _author(message: dict[str, Any]) -> str | None:
    author = message.get("author")
    if not isinstance(author, dict):
        return None
    name = author.get("username") or author.get("global_name")
    return str(name) if name else None


def _reaction_count(message: dict[str, Any]) -> int:
    total = 0
    for reaction in message.get("reactions") or []:
        count = reaction.get("count") if isinstance(reaction, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            total += count
    return total


def _timestamp(value: object) -> datetime | None:
    """Discord's ISO 8601 timestamp in UTC; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_message(item: object) -> bool:
    return isinstance(item, dict) and _SNOWFLAKE.fullmatch(str(item.get("id", ""))) is not None


def _newest_id(messages: list[dict[str, Any]]) -> str:
    return max((str(m["id"]) for m in messages), key=int)


def _oldest_id(messages: list[dict[str, Any]]) -> str:
    return min((str(m["id"]) for m in messages), key=int)


def _next_state(state: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest id seen, and where the next poll starts: :data:`EDIT_WINDOW` messages back."""
    if not messages:
        return dict(state)
    ids = sorted({int(m["id"]) for m in messages}, reverse=True)
    newest = max(ids[0], int(state.get("newest_id") or 0))
    if len(ids) > EDIT_WINDOW:
        recheck_after = str(ids[EDIT_WINDOW])
    else:
        # Too few messages to fill the window: start again from what the last poll did, or
        # from the channel's beginning ("0"), which holds no more than the window.
        recheck_after = str(state.get("recheck_after") or "0")
    return {**state, "newest_id": str(newest), "recheck_after": recheck_after}


def _json(response: FetchedResponse, shape: type[Any], what: str) -> Any:
    """The JSON body of a Discord answer, which must be ``shape``; ParseError otherwise."""
    try:
        value = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        content_type = response.headers.get("content-type", "no Content-Type").split(";")[0]
        raise ParseError(
            f"Discord answered {response.url} with a body that is not JSON ({content_type}, "
            f"{len(response.body):,} bytes: {exc}): check SIGWATCH_DISCORD_API_URL points at "
            "Discord's API (https://discord.com/api/v10); a cut-off answer is retried next poll"
        ) from None
    if not isinstance(value, shape):
        raise ParseError(
            f"Discord answered {response.url} with JSON that is not {what} "
            f"(got {type(value).__name__}): check SIGWATCH_DISCORD_API_URL points at "
            "Discord's API (https://discord.com/api/v10)"
        )
    return value


def _paused(error: HTTPStatusError, channel_id: str) -> SourcePaused | None:
    """The pause for an answer no retry can fix (token, permissions, no such channel)."""
    if error.rate_limited:
        return None
    if error.status == 401:
        return SourcePaused(
            "Discord refused the bot token (HTTP 401 Unauthorized): it is wrong or was reset; "
            "copy the bot's token from the Developer Portal (your application → Bot → Reset "
            "Token) into this source's bot_token, then resume the source"
        )
    if error.status == 403:
        return SourcePaused(
            f"Discord refused the bot access to channel {channel_id} (HTTP 403 Forbidden): "
            "the bot is not in that server, or lacks View Channel and Read Message History "
            "in that channel; grant them (channel settings → Permissions), then resume the "
            "source"
        )
    if error.status == 404:
        return SourcePaused(
            f"Discord has no channel {channel_id} (HTTP 404 Not Found): check channel_id "
            "(right-click the channel → Copy Channel ID), then resume the source; when every "
            "Discord source says this, check SIGWATCH_DISCORD_API_URL"
        )
    return None
