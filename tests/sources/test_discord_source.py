"""DiscordSource against recorded bot API answers served from a real server on 127.0.0.1.

The answers under tests/sources/discord_*.json are written in the shapes of Discord's API
reference (Message, Embed, Attachment, Reaction and Channel objects, JSON error codes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigwatch.errors import (
    FetchError,
    HTTPStatusError,
    InvalidOptions,
    ParseError,
    SourcePaused,
    TransportError,
)
from sigwatch.sources.base import Platforms, can_backfill
from sigwatch.sources.discord import EDIT_WINDOW, DiscordOptions, DiscordSource
from sigwatch.sources.registry import build_source, source_origin, validate_config

HERE = Path(__file__).parent
CHANNEL = "1151985543220084756"
GUILD = "1151985541793972294"
TOKEN = "MTE2MTMzOTEyMjQwNTA5MzQyNg.GxYz12.s3cr3t-b0t-t0ken-value"
MESSAGES = f"/channels/{CHANNEL}/messages"
JSON_HEADERS = {"Content-Type": "application/json"}
NEWEST = "1445721901417758725"
OLDEST = "1445718020050780165"


def fixture(name: str) -> bytes:
    return (HERE / name).read_bytes()


def serve_channel(server, body: bytes | None = None) -> None:
    server.serve(
        f"/channels/{CHANNEL}", body or fixture("discord_channel.json"), headers=JSON_HEADERS
    )


def serve_messages(server, query: str = "limit=100", body: bytes | None = None, headers=None):
    server.serve(
        f"{MESSAGES}?{query}",
        fixture("discord_channel_messages.json") if body is None else body,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def discord_source(server, client) -> DiscordSource:
    options = DiscordOptions(channel_id=CHANNEL, bot_token=TOKEN)
    return DiscordSource(options, client, Platforms(discord_api_url=server.url("").rstrip("/")))


def message(snowflake: int, content: str) -> dict:
    return {
        "id": str(snowflake),
        "channel_id": CHANNEL,
        "type": 0,
        "content": content,
        "author": {"id": "402930218383409152", "username": "alice.eth", "global_name": "Alice"},
        "timestamp": "2025-12-03T10:07:16.122000+00:00",
        "edited_timestamp": None,
        "attachments": [],
        "embeds": [],
    }


def page(first: int, count: int) -> bytes:
    """``count`` messages with ids from ``first`` up, newest first as Discord sends them."""
    return json.dumps(
        [message(first + n, f"message {first + n}") for n in reversed(range(count))]
    ).encode()


async def test_messages_become_posts_oldest_first_and_notices_are_skipped(server, client):
    serve_channel(server)
    serve_messages(server)

    result = await discord_source(server, client).fetch({})

    assert [p.external_id for p in result.posts] == [
        OLDEST,
        "1445719252710588421",
        "1445721027698098181",
        NEWEST,
    ]  # the member-join notice (type 7, no content) is no post
    assert result.warnings == [] and result.wait_s is None


async def test_message_fields_are_mapped(server, client):
    serve_channel(server)
    serve_messages(server)

    post = (await discord_source(server, client).fetch({})).posts[0]

    assert post.text == (
        "Example Protocol confirmed the TGE for Friday, claim page goes live at 12:00 UTC"
    )
    assert post.author == "alice.eth"
    assert post.url == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{OLDEST}"
    assert post.published_at == datetime(2025, 12, 3, 10, 7, 16, 122000, tzinfo=UTC)
    assert post.metrics == {"reactions": 2}
    assert post.raw["edited_timestamp"] == "2025-12-03T10:09:02.477000+00:00"
    assert json.loads(json.dumps(post.raw)) == post.raw


async def test_embed_title_description_and_fields_are_part_of_the_text(server, client):
    serve_channel(server)
    serve_messages(server)

    post = (await discord_source(server, client).fetch({})).posts[1]

    assert post.text == (
        "New listing: Example Protocol (EXP) Trading opens **2025-12-05 12:00 UTC** for "
        "EXP/USDT. Deposits: Open now Airdrop: Holders of XYZ get 5% of supply"
    )
    assert post.author == "Listings Bot"
    assert post.metrics == {"reactions": 10}
    assert post.html is not None and "<p>New listing: Example Protocol (EXP)</p>" in post.html


async def test_attachments_are_kept_in_metrics_and_text_is_not_read_as_html(server, client):
    serve_channel(server)
    serve_messages(server)

    posts = (await discord_source(server, client).fetch({})).posts

    assert posts[2].text == ""
    assert (
        posts[2]
        .metrics["attachments"][0]
        .startswith("https://cdn.discordapp.com/attachments/1151985543220084756/")
    )
    # Discord's <https://…> and <@id> are markup of its own, not HTML tags to strip.
    assert (
        "<https://example.org/blog>" in posts[3].text and "<@402930218383409152>" in posts[3].text
    )
    assert posts[3].author == "bobtrades"


async def test_requests_carry_the_bot_token_and_the_guild_is_asked_once(server, client):
    serve_channel(server)
    serve_messages(server)
    serve_messages(server, "limit=100&after=0", b"[]")
    source = discord_source(server, client)

    first = await source.fetch({})
    await source.fetch(json.loads(json.dumps(first.state)))

    assert [r.path.split("?")[0] for r in server.requests] == [f"/channels/{CHANNEL}"] + [
        MESSAGES
    ] * 2
    assert all(r.headers["authorization"] == f"Bot {TOKEN}" for r in server.requests)
    assert first.state["guild_id"] == GUILD and first.state["newest_id"] == NEWEST


async def test_the_next_poll_asks_after_the_seen_messages_rereading_the_last_few(server, client):
    serve_channel(server)
    serve_messages(server, "limit=100", page(1445718020050780165, 30))
    source = discord_source(server, client)

    state = (await source.fetch({})).state

    newest = 1445718020050780165 + 29
    assert state["newest_id"] == str(newest)
    assert state["recheck_after"] == str(newest - EDIT_WINDOW)
    serve_messages(server, f"limit=100&after={newest - EDIT_WINDOW}", b"[]")
    await source.fetch(state)
    assert server.requests[-1].path == f"{MESSAGES}?limit=100&after={newest - EDIT_WINDOW}"


async def test_an_edited_message_comes_back_with_its_new_text_under_the_same_id(server, client):
    serve_channel(server)
    serve_messages(server, "limit=100", page(1445718020050780165, 3))
    source = discord_source(server, client)
    state = (await source.fetch({})).state
    edited = message(1445718020050780166, "message edited: TGE moved to Monday")
    edited["edited_timestamp"] = "2025-12-03T11:00:00+00:00"
    serve_messages(server, "limit=100&after=0", json.dumps([edited]).encode())

    again = await source.fetch(state)

    assert [(p.external_id, p.text) for p in again.posts] == [
        ("1445718020050780166", "message edited: TGE moved to Monday")
    ]


async def test_a_busy_channel_is_paged_forward_with_after(server, client):
    serve_channel(server)
    start = 1445700000000000000
    serve_messages(server, f"limit=100&after={start}", page(start + 1, 100))
    serve_messages(server, f"limit=100&after={start + 100}", page(start + 101, 7))
    state = {"guild_id": GUILD, "newest_id": str(start), "recheck_after": str(start)}

    result = await discord_source(server, client).fetch(state)

    assert len(result.posts) == 107
    assert result.state["newest_id"] == str(start + 107)


async def test_an_exhausted_rate_limit_sets_the_wait_before_the_next_poll(server, client):
    serve_channel(server)
    start = 1445700000000000000
    limited = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "4.25"}
    serve_messages(server, f"limit=100&after={start}", page(start + 1, 100), limited)
    state = {"guild_id": GUILD, "recheck_after": str(start)}

    result = await discord_source(server, client).fetch(state)

    assert result.wait_s == pytest.approx(4.25)
    assert len(result.posts) == 100 and len(server.requests) == 1  # no second page asked


async def test_a_429_is_a_rate_limited_error_that_waits(server, client):
    serve_channel(server)
    server.serve(
        MESSAGES,
        fixture("discord_error_429.json"),
        status=429,
        headers={
            **JSON_HEADERS,
            "Retry-After": "3",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": "2.5",
            "X-RateLimit-Scope": "user",
        },
    )

    with pytest.raises(HTTPStatusError) as caught:
        await discord_source(server, client).fetch({})

    assert caught.value.rate_limited and caught.value.retryable
    assert caught.value.wait_s == pytest.approx(3.0)
    assert "rate-limiting" in str(caught.value)


async def test_a_429_with_only_discords_reset_header_still_waits(server, client):
    serve_channel(server)
    server.serve(
        MESSAGES,
        fixture("discord_error_429.json"),
        status=429,
        headers={**JSON_HEADERS, "X-RateLimit-Reset-After": "2.5"},
    )

    with pytest.raises(HTTPStatusError) as caught:
        await discord_source(server, client).fetch({"guild_id": GUILD})

    assert caught.value.wait_s == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (401, "Discord refused the bot token"),
        (403, "Read Message History"),
        (404, f"Discord has no channel {CHANNEL}"),
    ],
)
async def test_refused_credentials_or_access_pause_the_source(server, client, status, said):
    server.serve(
        f"/channels/{CHANNEL}",
        fixture(f"discord_error_{status}.json"),
        status=status,
        headers=JSON_HEADERS,
    )

    with pytest.raises(SourcePaused) as caught:
        await discord_source(server, client).fetch({})

    assert said in str(caught.value) and "resume the source" in str(caught.value)
    assert TOKEN not in str(caught.value) and "s3cr3t" not in str(caught.value)


async def test_a_403_on_the_messages_pauses_too(server, client):
    server.serve(MESSAGES, fixture("discord_error_403.json"), status=403, headers=JSON_HEADERS)

    with pytest.raises(SourcePaused, match="lacks View Channel and Read Message History"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_a_server_error_is_retryable_and_does_not_pause(server, client):
    server.serve(MESSAGES, b"upstream connect error", status=502)

    with pytest.raises(HTTPStatusError) as caught:
        await discord_source(server, client).fetch({"guild_id": GUILD})

    assert caught.value.retryable and not isinstance(caught.value, SourcePaused)


@pytest.mark.parametrize(
    "body",
    [b"<html>Cloudflare</html>", fixture("discord_channel_messages.json")[:700], b""],
    ids=["html", "truncated", "empty"],
)
async def test_a_body_that_is_not_json_is_a_parse_error(server, client, body):
    serve_messages(server, body=body)

    with pytest.raises(ParseError, match="not JSON"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_json_of_the_wrong_shape_is_a_parse_error(server, client):
    serve_messages(server, body=b'{"message": "nope"}')

    with pytest.raises(ParseError, match="not a list of messages"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_entries_without_a_snowflake_are_skipped_with_a_warning(server, client):
    serve_messages(
        server, body=json.dumps([{"content": "x"}, message(1445718020050780165, "ok")]).encode()
    )

    result = await discord_source(server, client).fetch({"guild_id": GUILD})

    assert [p.text for p in result.posts] == ["ok"]
    assert result.warnings == ["skipped 1 message(s) without a snowflake id from Discord"]


async def test_an_oversize_answer_is_a_fetch_error(server, client):
    server.stream(MESSAGES, 3_000_000, chunked=True)

    with pytest.raises(FetchError, match="exceeded the limit"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_a_redirect_loop_is_a_fetch_error(server, client):
    server.redirect(MESSAGES, MESSAGES)

    with pytest.raises(FetchError, match="too many redirects"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_a_slow_api_is_a_timeout(server, client):
    server.sleep_then_serve(MESSAGES, 6.0)

    with pytest.raises(TransportError, match="timed out"):
        await discord_source(server, client).fetch({"guild_id": GUILD})


async def test_a_direct_message_channel_links_through_me(server, client):
    serve_channel(server, json.dumps({"id": CHANNEL, "type": 1, "recipients": []}).encode())
    serve_messages(server, body=page(1445718020050780165, 1))

    result = await discord_source(server, client).fetch({})

    assert result.state["guild_id"] == "@me"
    assert result.posts[0].url == (
        f"https://discord.com/channels/@me/{CHANNEL}/1445718020050780165"
    )


async def test_backfill_pages_back_with_before_until_a_short_page(server, client):
    serve_channel(server)
    start = 1445700000000000000
    serve_messages(server, "limit=100", page(start + 100, 100))
    serve_messages(server, f"limit=100&before={start + 100}", page(start + 60, 40))
    source = discord_source(server, client)
    assert can_backfill(source)

    first = await source.backfill({}, None)
    second = await source.backfill(first.state or {}, first.cursor)

    assert first.cursor == {"before": str(start + 100)} and len(first.posts) == 100
    assert first.state == {"guild_id": GUILD}
    assert second.cursor is None and len(second.posts) == 40 and second.state is None
    assert first.posts[-1].external_id == str(start + 199)


@pytest.mark.parametrize(
    "config",
    [
        {"channel_id": "12345", "bot_token": TOKEN},
        {"channel_id": "1151985543220084756x", "bot_token": TOKEN},
        {"channel_id": CHANNEL, "bot_token": "   "},
        {"channel_id": CHANNEL, "bot_token": "two words"},
        {"channel_id": CHANNEL},
        {"channel_id": CHANNEL, "bot_token": TOKEN, "guild": "1"},
    ],
    ids=["short-id", "not-digits", "blank-token", "token-with-space", "no-token", "unknown"],
)
def test_bad_options_are_refused(config):
    with pytest.raises(InvalidOptions):
        validate_config("discord", config)


def test_options_accept_a_numeric_id_and_a_pasted_bot_prefix():
    clear = validate_config("discord", {"channel_id": int(CHANNEL), "bot_token": f"Bot {TOKEN}"})

    assert clear == {"channel_id": CHANNEL, "bot_token": TOKEN}
    assert source_origin("discord", clear) == f"discord:{CHANNEL}"


async def test_the_registry_builds_the_kind_with_the_platform_address(server, client):
    serve_channel(server)
    serve_messages(server)
    platforms = Platforms(discord_api_url=server.url("").rstrip("/"))
    source = build_source("discord", {"channel_id": CHANNEL, "bot_token": TOKEN}, client, platforms)

    assert len((await source.fetch({})).posts) == 4
