"""TelegramSource against channel preview pages served from a real server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sigwatch.db.posts import content_hash
from sigwatch.errors import FetchError, HTTPStatusError, ParseError, SourceError, TransportError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import Platforms, can_backfill
from sigwatch.sources.registry import build_source, source_origin
from sigwatch.sources.telegram import TelegramOptions, TelegramSource, parse_count
from sigwatch.sources.text import html_to_multiline_text
from sigwatch.worker.posts import to_new_posts

HTML = {"Content-Type": "text/html; charset=utf-8"}


def message(
    number: int,
    text_html: str = "",
    *,
    channel: str = "example_news",
    views: str = "1.2K",
    edited: bool = False,
    signature: str | None = None,
    extra: str = "",
) -> str:
    """One message widget as the preview page writes it."""
    signed = (
        f'<span class="tgme_widget_message_from_author">{signature}</span>, ' if signature else ""
    )
    text = f'<div class="tgme_widget_message_text js-message_text">{text_html}</div>'
    return f"""
<div class="tgme_widget_message_wrap js-widget_message_wrap">
 <div class="tgme_widget_message js-widget_message" data-post="{channel}/{number}">
  <div class="tgme_widget_message_bubble">
   <div class="tgme_widget_message_author"><a class="tgme_widget_message_owner_name"
     href="https://t.me/{channel}"><span dir="auto">Example News</span></a></div>
   {extra}
   {text if text_html else ""}
   <div class="tgme_widget_message_footer compact js-message_footer">
    <div class="tgme_widget_message_info short js-message_info">
     <span class="tgme_widget_message_views">{views}</span><span class="copyonly"> views</span>
     <span class="tgme_widget_message_meta">{signed}{"edited &nbsp;" if edited else ""}<a
       class="tgme_widget_message_date" href="https://t.me/{channel}/{number}"><time
       datetime="2025-12-03T1{number % 10}:07:16+00:00" class="time">10:07</time></a></span>
    </div>
   </div>
  </div>
 </div>
</div>"""


def page(*messages: str, before: int | None = None, channel: str = "example_news") -> bytes:
    """A channel preview page holding ``messages``, with an "older" link when ``before``."""
    more = (
        f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a '
        f'href="/s/{channel}?before={before}" class="tme_messages_more js-messages_more" '
        f'data-before="{before}"></a></div>'
        if before is not None
        else ""
    )
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Example News – Telegram</title><meta property="og:title" content="Example News"></head>
<body><main class="tgme_main" data-url="/{channel}"><div class="tgme_container">
<section class="tgme_channel_history js-message_history">{more}{"".join(messages)}</section>
</div></main></body></html>""".encode()


JOIN_PAGE = b"""<!DOCTYPE html><html><head><title>Telegram: Contact @example_news</title></head>
<body><div class="tgme_page"><div class="tgme_page_title">Example News</div>
<a class="tgme_action_button_new" href="tg://resolve?domain=example_news">View in Telegram</a>
</div></body></html>"""


def telegram(client: OutboundClient, server, channel: str = "example_news") -> TelegramSource:
    platforms = Platforms(telegram_url=server.url("").rstrip("/"))
    return TelegramSource(TelegramOptions(channel=channel), client, platforms)


# Options


@pytest.mark.parametrize(
    "given",
    [
        "example_news",
        "  @example_news ",
        "https://t.me/example_news",
        "https://t.me/s/example_news",
        "t.me/example_news/41",
        "https://telegram.me/example_news?start=1",
    ],
)
def test_a_name_an_at_name_or_a_t_me_address_gives_the_channel_name(given):
    assert TelegramOptions(channel=given).channel == "example_news"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("abcd", "5 to 32 letters"),
        ("a" * 33, "5 to 32 letters"),
        ("bad-name", "5 to 32 letters"),
        ("https://t.me/+AbCdEfGhIjK", "invite link"),
        ("https://t.me/joinchat/AbCdEf", "invite link"),
        ("https://example.com/example_news", "t.me address"),
    ],
)
def test_options_refuse_what_is_no_public_channel_name(given, said):
    with pytest.raises(ValidationError, match=said):
        TelegramOptions(channel=given)


def test_options_refuse_unknown_keys():
    with pytest.raises(ValidationError):
        TelegramOptions.model_validate({"channel": "example_news", "chanel": "x"})


def test_origin_is_the_lower_cased_channel():
    assert source_origin("telegram", {"channel": "@Example_News"}) == "telegram:example_news"


@pytest.mark.parametrize(
    ("shown", "count"),
    [("746", 746), ("1.2K", 1200), ("214.4K", 214_400), ("3M", 3_000_000), ("1,5K", 1500)],
)
def test_view_counts_become_numbers(shown, count):
    assert parse_count(shown) == count


def test_an_unreadable_view_count_is_none():
    assert parse_count("") is None and parse_count("views") is None


# Text with its line breaks (sigwatch.sources.text.html_to_multiline_text)


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("one<br>two", "one\ntwo"),
        ("one<br><br>two", "one\n\ntwo"),
        ("one<br><br><br><br>two", "one\n\ntwo"),
        ("a pretty-\n      printed   line<br/>next", "a pretty- printed line\nnext"),
        ("<div>first</div><div>second</div>", "first\nsecond"),
        ("<p>x &amp; y</p><script>hidden()</script>", "x & y"),
        ("  <br>  only  <br>  ", "only"),
        ("\ue000marker-like\ue001 input", "marker-like input"),
    ],
)
def test_html_to_multiline_text_keeps_line_breaks_and_collapses_the_rest(fragment, text):
    assert html_to_multiline_text(fragment) == text


# Fetching


async def test_fetch_reads_the_preview_page_of_the_channel(server, client):
    server.serve("/s/example_news", page(message(41, "hello")), headers=HTML)

    result = await telegram(client, server).fetch({})

    assert [request.path for request in server.requests] == ["/s/example_news"]
    assert [post.external_id for post in result.posts] == ["example_news/41"]
    assert result.warnings == [] and result.not_modified is False


async def test_message_fields_are_mapped(server, client):
    text = (
        "<b>Mainnet</b> is live!<br/>Claim at "
        '<a href="https://example.com/claim" target="_blank">example.com/claim</a><br>'
        '<a href="?q=%23airdrop">#airdrop</a><script>steal()</script>'
    )
    server.serve("/s/example_news", page(message(41, text, views="214.4K")), headers=HTML)

    post = (await telegram(client, server).fetch({})).posts[0]

    assert post.external_id == "example_news/41"
    assert post.url == "https://t.me/example_news/41"
    assert post.published_at == datetime(2025, 12, 3, 11, 7, 16, tzinfo=UTC)
    assert post.author == "example_news"
    assert post.title is None
    assert post.text == "Mainnet is live!\nClaim at example.com/claim\n#airdrop"
    assert post.metrics == {"views": 214_400, "edited": False}
    assert post.raw["links"] == [
        "https://example.com/claim",
        "https://t.me/s/example_news?q=%23airdrop",
    ]
    assert post.raw["channel"] == "example_news" and post.raw["id"] == 41
    assert post.raw["channel_title"] == "Example News"
    assert 'data-post="example_news/41"' in post.raw["html"]
    assert post.html is not None and "<b>Mainnet</b>" in post.html
    assert "script" not in post.html and "steal" not in post.html
    assert json.loads(json.dumps(post.raw)) == post.raw


async def test_a_signed_post_is_authored_by_its_signature(server, client):
    server.serve("/s/example_news", page(message(41, "hi", signature="Alice B")), headers=HTML)

    post = (await telegram(client, server).fetch({})).posts[0]

    assert post.author == "Alice B"
    assert post.raw["signature"] == "Alice B"


async def test_forwarded_from_and_media_are_kept_in_raw(server, client):
    extra = """
<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;<a
  class="tgme_widget_message_forwarded_from_name" href="https://t.me/origin_chan/7"><span
  dir="auto">Origin Channel</span></a></div>
<a class="tgme_widget_message_photo_wrap" href="https://t.me/example_news/41"
  style="width:800px;background-image:url('https://cdn.example/photo.jpg')"></a>
<a class="tgme_widget_message_video_player" href="https://t.me/example_news/41">
  <i class="tgme_widget_message_video_thumb" style="background-image:url('https://cdn.example/t.jpg')"></i>
  <video src="https://cdn.example/clip.mp4" class="tgme_widget_message_video"></video></a>
<a class="tgme_widget_message_document_wrap" href="https://t.me/example_news/41">
  <div class="tgme_widget_message_document_title">whitepaper.pdf</div>
  <div class="tgme_widget_message_document_extra">2.1 MB</div></a>
<a class="tgme_widget_message_link_preview" href="https://example.com/post">
  <div class="link_preview_title">A linked page</div>
  <i class="link_preview_image" style="background-image:url('https://cdn.example/preview.jpg')"></i></a>
"""
    server.serve("/s/example_news", page(message(41, "see", extra=extra)), headers=HTML)

    post = (await telegram(client, server).fetch({})).posts[0]

    assert post.raw["forwarded_from"] == {
        "name": "Origin Channel",
        "url": "https://t.me/origin_chan/7",
    }
    assert post.raw["media"] == [
        {"type": "photo", "url": "https://cdn.example/photo.jpg"},
        {"type": "video", "url": "https://cdn.example/clip.mp4"},
        {
            "type": "document",
            "url": "https://t.me/example_news/41",
            "name": "whitepaper.pdf",
            "size": "2.1 MB",
        },
    ]
    assert post.raw["link_preview"] == {
        "url": "https://example.com/post",
        "title": "A linked page",
        "image": "https://cdn.example/preview.jpg",
    }
    assert post.raw["links"] == ["https://example.com/post"]


async def test_a_message_without_text_has_empty_text(server, client):
    server.serve("/s/example_news", page(message(41)), headers=HTML)

    post = (await telegram(client, server).fetch({})).posts[0]

    assert post.text == "" and post.html is None


async def test_an_edited_message_brings_its_new_text_and_changes_the_stored_content(server, client):
    source = telegram(client, server)
    server.serve("/s/example_news", page(message(41, "TGE on Friday")), headers=HTML)
    first = (await source.fetch({})).posts[0]
    server.serve(
        "/s/example_news", page(message(41, "TGE moved to Monday", edited=True)), headers=HTML
    )

    second = (await source.fetch({})).posts[0]

    assert first.external_id == second.external_id
    assert (first.metrics["edited"], second.metrics["edited"]) == (False, True)
    assert second.raw["edited"] is True
    assert second.text == "TGE moved to Monday"
    hashed = [content_hash(stored) for stored in to_new_posts([first, second])]
    assert hashed[0] != hashed[1]  # so storage updates the stored post


async def test_new_view_counts_leave_the_stored_content_unchanged(server, client):
    # The preview pads the text with a spacer as wide as the footer, so its width changes
    # with the view count; only metrics may change then, or every poll would "update" posts.
    source = telegram(client, server)
    spacer = '<span style="display: inline-block; width: {}px;"></span>'
    server.serve("/s/example_news", page(message(41, "hi" + spacer.format(86), views="999")))
    first = (await source.fetch({})).posts[0]
    server.serve("/s/example_news", page(message(41, "hi" + spacer.format(104), views="1K")))

    second = (await source.fetch({})).posts[0]

    assert (first.text, first.html) == (second.text, second.html)
    assert (first.metrics["views"], second.metrics["views"]) == (999, 1000)


async def test_the_word_edited_in_a_signature_does_not_mark_a_message_edited(server, client):
    server.serve(
        "/s/example_news", page(message(41, "hi", signature="edited by Bob")), headers=HTML
    )

    post = (await telegram(client, server).fetch({})).posts[0]

    assert post.metrics["edited"] is False


async def test_fetch_keeps_the_newest_id_in_state(server, client):
    server.serve("/s/example_news", page(message(41, "a"), message(42, "b")), headers=HTML)

    result = await telegram(client, server).fetch({"kept": True})

    assert result.state == {"kept": True, "newest_id": 42}
    assert result.warnings == []


async def test_a_gap_since_the_last_poll_is_a_warning_naming_the_skipped_ids(server, client):
    server.serve("/s/example_news", page(message(60, "a"), message(61, "b")), headers=HTML)

    result = await telegram(client, server).fetch({"newest_id": 41})

    assert len(result.warnings) == 1
    assert "messages after 41 and before 60 were not read" in result.warnings[0]
    assert "backfill" in result.warnings[0]
    assert result.state["newest_id"] == 61


async def test_no_gap_warning_when_the_page_reaches_back_to_the_last_poll(server, client):
    server.serve("/s/example_news", page(message(41, "a"), message(42, "b")), headers=HTML)

    result = await telegram(client, server).fetch({"newest_id": 41})

    assert result.warnings == []


async def test_an_empty_channel_gives_no_posts_and_no_error(server, client):
    server.serve("/s/example_news", page(), headers=HTML)

    result = await telegram(client, server).fetch({})

    assert result.posts == [] and result.warnings == []


async def test_a_message_repeated_on_the_page_is_one_post(server, client):
    server.serve("/s/example_news", page(message(41, "a"), message(41, "a")), headers=HTML)

    assert len((await telegram(client, server).fetch({})).posts) == 1


# Backfill


async def test_backfill_pages_back_with_before_until_the_first_message(server, client):
    source = telegram(client, server)
    assert can_backfill(source)
    server.serve("/s/example_news", page(message(41, "a"), message(42, "b"), before=41))

    newest = await source.backfill({}, None)
    server.serve("/s/example_news", page(message(1, "first"), message(2, "second")))
    oldest = await source.backfill({}, newest.cursor)

    assert [post.external_id for post in newest.posts] == ["example_news/41", "example_news/42"]
    assert newest.cursor == {"before": 41}
    assert server.requests[-1].path == "/s/example_news?before=41"
    assert [post.external_id for post in oldest.posts] == ["example_news/1", "example_news/2"]
    assert oldest.cursor is None


async def test_backfill_stops_when_the_older_link_does_not_go_back(server, client):
    server.serve("/s/example_news", page(message(41, "a"), before=41))

    result = await telegram(client, server).backfill({}, {"before": 41})

    assert result.cursor is None


async def test_backfill_with_a_cursor_without_an_id_is_a_parse_error(server, client):
    with pytest.raises(ParseError, match="start the backfill again"):
        await telegram(client, server).backfill({}, {"before": "soon"})


# Failures


async def test_a_private_or_unknown_channel_says_so(server, client):
    server.serve("/s/example_news", JOIN_PAGE, headers=HTML)

    with pytest.raises(ParseError) as caught:
        await telegram(client, server).fetch({})

    message_ = str(caught.value)
    assert message_.startswith("t.me/s/example_news is not a channel preview")
    assert "may be private or may not exist" in message_
    assert "https://t.me/example_news" in message_


async def test_a_redirect_to_the_join_page_is_named_in_the_error(server, client):
    server.redirect("/s/example_news", server.url("/example_news"))
    server.serve("/example_news", JOIN_PAGE, headers=HTML)

    with pytest.raises(ParseError, match=r"redirected to http://127\.0\.0\.1:\d+/example_news"):
        await telegram(client, server).fetch({})


async def test_a_body_that_is_no_html_page_is_a_parse_error(server, client):
    server.serve("/s/example_news", b"\x00\x01\x02garbage", headers=HTML)

    with pytest.raises(ParseError, match="not a channel preview"):
        await telegram(client, server).fetch({})


async def test_a_cut_off_page_keeps_the_messages_before_the_cut(server, client):
    whole = page(message(41, "complete"), message(42, "cut here"))
    cut = whole[: whole.index(b"cut here")]
    server.serve("/s/example_news", cut, headers=HTML)

    result = await telegram(client, server).fetch({})

    assert [post.external_id for post in result.posts][0] == "example_news/41"
    assert result.posts[0].text == "complete"


async def test_a_message_without_an_id_is_skipped_with_a_warning(server, client):
    broken = message(41, "fine").replace('data-post="example_news/41"', 'data-post="example_news/"')
    server.serve("/s/example_news", page(broken, message(42, "b")), headers=HTML)

    result = await telegram(client, server).fetch({})

    assert [post.external_id for post in result.posts] == ["example_news/42"]
    assert result.warnings == ["skipped 1 message without a readable id (a cut-off page?); kept 1"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_a_retryable_status_error(server, client, status):
    server.serve("/s/example_news", b"down", status=status)

    with pytest.raises(HTTPStatusError) as caught:
        await telegram(client, server).fetch({})

    assert caught.value.retryable
    assert f"HTTP {status}" in str(caught.value) and "tries again later" in str(caught.value)


async def test_429_honours_retry_after(server, client):
    server.serve("/s/example_news", b"slow down", status=429, headers={"Retry-After": "120"})

    with pytest.raises(HTTPStatusError) as caught:
        await telegram(client, server).fetch({})

    assert caught.value.rate_limited and caught.value.wait_s == 120
    assert "rate-limiting" in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refusal_is_a_status_error_that_is_not_retried(server, client, status):
    server.serve("/s/example_news", b"no", status=status)

    with pytest.raises(HTTPStatusError) as caught:
        await telegram(client, server).fetch({})

    assert not caught.value.retryable
    assert f"HTTP {status}" in str(caught.value)


async def test_a_page_that_does_not_answer_in_time_is_a_transport_error(server):
    server.sleep_then_serve("/s/example_news", 3.0)
    async with OutboundClient(
        timeout_s=0.3,
        max_response_bytes=100_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as slow_client:
        with pytest.raises(TransportError, match="timed out after 0.3s"):
            await telegram(slow_client, server).fetch({})


async def test_an_oversize_page_is_a_fetch_error(server):
    server.serve("/s/example_news", page(message(41, "x" * 5000)), headers=HTML)
    async with OutboundClient(
        timeout_s=2.0,
        max_response_bytes=1000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as small_client:
        with pytest.raises(FetchError, match="over the limit of 1,000"):
            await telegram(small_client, server).fetch({})


async def test_a_redirect_loop_is_a_fetch_error(server, client):
    server.redirect("/s/example_news", server.url("/s/example_news"))

    with pytest.raises(FetchError, match="too many redirects"):
        await telegram(client, server).fetch({})


async def test_every_failure_is_a_source_error(server, client):
    server.serve("/s/example_news", b"", status=404)

    with pytest.raises(SourceError, match="HTTP 404"):
        await telegram(client, server).fetch({})


async def test_the_registry_builds_the_telegram_kind(server, client):
    server.serve("/s/example_news", page(message(41, "hello")), headers=HTML)
    platforms = Platforms(telegram_url=server.url("").rstrip("/"))

    source = build_source("telegram", {"channel": "@example_news"}, client, platforms)

    assert [post.text for post in (await source.fetch({})).posts] == ["hello"]
