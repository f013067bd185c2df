"""WebSource against listing pages served from a real server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigwatch.errors import (
    ConfigError,
    FetchError,
    HTTPStatusError,
    InvalidOptions,
    ParseError,
    TransportError,
)
from sigwatch.net.client import OutboundClient
from sigwatch.sources import render, web
from sigwatch.sources.base import can_backfill
from sigwatch.sources.registry import build_source, source_origin, validate_config
from sigwatch.sources.web import WebOptions, WebSource, parse_date, parse_selector

HERE = Path(__file__).parent
HTML = {"Content-Type": "text/html; charset=utf-8"}
ANNOUNCEMENTS = {
    "item": ".announcement",
    "title": ".title",
    "link": "a.title",
    "date": "time",
    "text": ".summary",
}
BLOG = {"item": "article.post", "title": "h2", "link": "h2 a", "date": ".date", "text": ".excerpt"}


@pytest.fixture(autouse=True)
def fresh_robots_cache(monkeypatch):
    """Each test reads robots.txt anew."""
    monkeypatch.setattr(web, "_robots_cache", {})


@pytest.fixture
async def fast_client() -> AsyncIterator[OutboundClient]:
    """A client with a 1 s timeout, for the tests of slow servers."""
    async with OutboundClient(
        timeout_s=1.0,
        max_response_bytes=2_000_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as opened:
        yield opened


def web_source(client: OutboundClient, url: str, **selectors: str) -> WebSource:
    return WebSource(WebOptions(url=url, **(selectors or ANNOUNCEMENTS)), client)


def serve_announcements(server, headers=None) -> str:
    body = (HERE / "web_exchange_announcements.html").read_bytes()
    return server.serve("/announcements", body, headers={**HTML, **(headers or {})})


async def test_each_item_is_a_post_in_page_order_with_repeats_and_empty_items_dropped(
    server, client
):
    url = serve_announcements(server)

    result = await web_source(client, url).fetch({})

    assert [p.title for p in result.posts] == [
        "Exchange Example Will List Example Protocol (EXP)",  # featured, and again in the list
        "Notice on Delisting of FOO and BAR",
        "ZED Airdrop for BNB Holders",
        "Scheduled wallet maintenance for the Example network",
        "Contact support",
    ]
    assert result.warnings[0] == (
        "skipped 1 item(s) where neither `title` nor `text` selected anything"
    )


async def test_links_are_made_absolute_against_the_pages_base(server, client):
    url = serve_announcements(server)

    posts = (await web_source(client, url).fetch({})).posts

    assert posts[0].url == server.url(
        "/support/announcement/exchange-example-will-list-example-protocol-exp"
    )
    assert posts[0].external_id == posts[0].url
    assert posts[1].url == server.url(
        "/support/announcement/notice-on-delisting-of-foo-and-bar?ref=list"
    )  # the fragment is dropped: the same page is the same post
    assert posts[2].url == "https://campaigns.exchange.example/airdrop/zed"
    assert posts[4].url is None  # javascript: is no link


async def test_an_item_without_a_link_gets_a_stable_id_from_its_text(server, client):
    url = serve_announcements(server)

    first = (await web_source(client, url).fetch({})).posts[3]
    again = (await web_source(client, url).fetch({})).posts[3]

    assert first.url is None and first.external_id.startswith("sha256:")
    assert first.external_id == again.external_id


async def test_dates_come_from_datetime_attributes_or_text_and_unreadable_ones_warn(server, client):
    url = serve_announcements(server)

    result = await web_source(client, url).fetch({})

    assert [p.published_at for p in result.posts] == [
        datetime(2025, 12, 3, 10, 0, tzinfo=UTC),
        datetime(2025, 12, 2, tzinfo=UTC),
        None,  # 02/12/2025: day first or month first cannot be told
        datetime(2025, 12, 1, 7, 0, tzinfo=UTC),
        None,
    ]
    assert "could not read the date of 1 item(s) (e.g. '02/12/2025')" in result.warnings[1]


async def test_text_is_plain_and_html_is_sanitised_with_absolute_urls(server, client):
    url = serve_announcements(server)

    posts = (await web_source(client, url).fetch({})).posts

    assert posts[0].text == "Deposits open now; trading starts 2025-12-05 12:00 UTC."
    assert posts[1].text.endswith("ends on 2025-12-16 & withdrawals stay open until March 2026.")
    assert posts[0].html is not None and "<strong>2025-12-05 12:00 UTC</strong>" in posts[0].html
    assert posts[2].html is not None
    assert "onerror" not in posts[2].html and server.url("/img/zed.png") in posts[2].html


async def test_the_raw_item_is_kept(server, client):
    url = serve_announcements(server)

    raw = (await web_source(client, url).fetch({})).posts[1].raw

    assert json.loads(json.dumps(raw)) == raw
    assert raw["html"].startswith('<li class="announcement">')
    assert raw["date"] == "Dec 2, 2025" and raw["title"] == "Notice on Delisting of FOO and BAR"


async def test_a_blog_index_in_windows_1252_declared_in_a_meta(server, client):
    body = (HERE / "web_blog_index.html").read_bytes()
    url = server.serve("/blog/", body, headers={"Content-Type": "text/html"})

    result = await web_source(client, url, **BLOG).fetch({})

    first = result.posts[0]
    assert first.title == "Mainnet is live \u2014 what\u2019s next"
    assert first.text == (
        "Our mainnet went live this morning after the caf\u00e9 meetup. Read the launch notes."
    )
    assert first.html is not None and "track(" not in first.html
    assert f'href="{server.url("/docs/mainnet")}"' in first.html
    assert [p.url for p in result.posts[:2]] == [
        server.url("/blog/2025/12/mainnet-is-live"),
        server.url("/blog/2025/11/token-generation-event"),
    ]
    assert [p.published_at for p in result.posts] == [
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2025, 11, 24, 8, 30, tzinfo=UTC),
        datetime(2025, 11, 10, tzinfo=UTC),
        None,
    ]
    assert result.warnings == [
        "could not read the date of 1 item(s) (e.g. 'a while ago'); they are dated when first "
        "seen: point `date` at a machine-readable date (`time@datetime`) if the page has one"
    ]


async def test_attribute_selectors_read_attributes_and_an_empty_one_reads_the_item(server, client):
    url = serve_announcements(server)
    source = web_source(client, url, item="a.title", title="@href", link="@href", text="")

    posts = (await source.fetch({})).posts

    assert posts[0].title == "announcement/exchange-example-will-list-example-protocol-exp"
    assert posts[0].url == server.url(
        "/support/announcement/exchange-example-will-list-example-protocol-exp"
    )
    assert posts[0].text == ""


def test_parse_selector_splits_off_a_trailing_attribute_only():
    assert parse_selector("time@datetime") == web.FieldSelector("time", "datetime")
    assert parse_selector("@href") == web.FieldSelector(None, "href")
    assert parse_selector("a.more @HREF") == web.FieldSelector("a.more", "href")
    assert parse_selector('a[href^="mailto:desk@news.example"]') == web.FieldSelector(
        'a[href^="mailto:desk@news.example"]', None
    )


async def test_etag_makes_the_next_fetch_conditional_and_304_means_not_modified(server, client):
    url = serve_announcements(server, {"ETag": '"page-v7"'})
    source = web_source(client, url)

    first = await source.fetch({})
    second = await source.fetch(json.loads(json.dumps(first.state)))

    assert first.state["etag"] == '"page-v7"' and first.state["matched"] is True
    assert second.not_modified and second.posts == []
    assert server.requests[-1].headers["if-none-match"] == '"page-v7"'


async def test_a_selector_that_never_matched_is_a_parse_error(server, client):
    url = serve_announcements(server)

    with pytest.raises(ParseError, match=r"selector matched no items: `item` \(article\.news\)"):
        await web_source(client, url, item="article.news", title="h2").fetch({})


async def test_a_page_that_matched_before_and_now_matches_nothing_only_warns(server, client):
    url = server.serve("/announcements", b"<html><body><p>Redesign!</p></body></html>")

    result = await web_source(client, url).fetch({"matched": True})

    assert result.posts == []
    assert result.warnings and result.warnings[0].startswith("selector matched no items")


async def test_backfill_returns_the_one_page_and_no_cursor(server, client):
    url = serve_announcements(server, {"ETag": '"page-v7"'})
    source = web_source(client, url)
    assert can_backfill(source)

    page = await source.backfill({"etag": '"page-v7"'}, None)

    assert len(page.posts) == 5 and page.cursor is None
    assert "if-none-match" not in server.requests[-1].headers  # the page itself, always


# robots.txt


ROBOTS = b"""# robots for the test exchange
User-agent: *
Disallow: /private

User-agent: sigwatch
Disallow: /announcements
Allow: /announcements/public
"""


async def test_robots_txt_refusal_names_the_rule_and_the_page_is_not_fetched(server, client):
    server.serve("/robots.txt", ROBOTS, headers={"Content-Type": "text/plain"})
    url = serve_announcements(server)

    with pytest.raises(FetchError) as caught:
        await web_source(client, url).fetch({})

    assert str(caught.value).startswith(
        "robots.txt of 127.0.0.1 disallows /announcements for sigwatch-test "
        "(Disallow: /announcements): "
    )
    assert [r.path for r in server.requests] == ["/robots.txt"]
    assert server.requests[0].headers["user-agent"] == "sigwatch-test/1"


async def test_robots_txt_allow_rules_and_other_agents_groups_are_respected(server, client):
    server.serve("/robots.txt", ROBOTS + b"\nUser-agent: otherbot\nDisallow: /\n")
    body = (HERE / "web_exchange_announcements.html").read_bytes()
    allowed = server.serve("/announcements/public", body, headers=HTML)

    result = await web_source(client, allowed).fetch({})

    assert len(result.posts) == 5


@pytest.mark.parametrize("status", [404, 401, 403, 410])
async def test_a_missing_or_closed_robots_txt_allows_everything(server, client, status):
    server.serve("/robots.txt", b"no", status=status)
    url = serve_announcements(server)

    assert len((await web_source(client, url).fetch({})).posts) == 5


@pytest.mark.parametrize("status", [500, 503])
async def test_a_failing_robots_txt_is_a_temporary_failure_not_a_permission(server, client, status):
    server.serve("/robots.txt", b"down", status=status)
    url = serve_announcements(server)

    with pytest.raises(HTTPStatusError) as caught:
        await web_source(client, url).fetch({})

    assert caught.value.retryable and caught.value.status == status
    assert str(caught.value).startswith("robots.txt of 127.0.0.1 could not be read")
    assert [r.path for r in server.requests] == ["/robots.txt"]


async def test_a_rate_limited_robots_txt_keeps_the_wait_it_asked_for(server, client):
    server.serve("/robots.txt", b"slow down", status=429, headers={"Retry-After": "120"})
    url = serve_announcements(server)

    with pytest.raises(HTTPStatusError) as caught:
        await web_source(client, url).fetch({})

    assert caught.value.rate_limited and caught.value.wait_s == pytest.approx(120)


async def test_robots_txt_is_read_once_per_host_until_it_expires(server, client):
    server.serve("/robots.txt", b"User-agent: *\nAllow: /\n")
    url = serve_announcements(server)
    source = web_source(client, url)

    await source.fetch({})
    await source.fetch({})
    robots_url = server.url("/robots.txt")
    read_at, rules = web._robots_cache[robots_url]
    web._robots_cache[robots_url] = (read_at - web.ROBOTS_TTL_S - 1, rules)
    await source.fetch({})

    assert [r.path for r in server.requests].count("/robots.txt") == 2


async def test_a_slow_robots_txt_is_a_timeout(server, fast_client):
    server.sleep_then_serve("/robots.txt", 3.0)
    url = serve_announcements(server)

    with pytest.raises(TransportError, match="robots.txt"):
        await web_source(fast_client, url).fetch({})


# Faults of the page itself


async def test_a_server_error_is_a_retryable_status_error(server, client):
    url = server.serve("/announcements", b"oops", status=502)

    with pytest.raises(HTTPStatusError) as caught:
        await web_source(client, url).fetch({})
    assert caught.value.retryable


async def test_a_slow_page_is_a_timeout(server, fast_client):
    url = server.sleep_then_serve("/announcements", 3.0)

    with pytest.raises(TransportError, match="timed out"):
        await web_source(fast_client, url).fetch({})


async def test_an_oversize_page_is_a_fetch_error(server, client):
    url = server.stream("/announcements", 3_000_000, chunked=False)

    with pytest.raises(FetchError, match="over the limit"):
        await web_source(client, url).fetch({})


async def test_a_redirect_loop_is_a_fetch_error(server, client):
    url = server.redirect("/announcements", "/announcements")

    with pytest.raises(FetchError, match="too many redirects"):
        await web_source(client, url).fetch({})


async def test_a_truncated_page_keeps_the_items_that_arrived(server, client):
    body = (HERE / "web_exchange_announcements.html").read_bytes()
    cut = body[: body.index(b"ZED Airdrop")]
    url = server.serve("/announcements", cut, headers=HTML)

    posts = (await web_source(client, url).fetch({})).posts

    assert [p.title for p in posts] == [
        "Exchange Example Will List Example Protocol (EXP)",
        "Notice on Delisting of FOO and BAR",
    ]


async def test_an_answer_that_is_no_html_page_is_a_parse_error(server, client):
    url = server.serve("/announcements", b"%PDF-1.7", headers={"Content-Type": "application/pdf"})

    with pytest.raises(ParseError, match=r"is not an HTML page \(application/pdf\)"):
        await web_source(client, url).fetch({})


# Dates


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2025-12-03T10:00:00Z", datetime(2025, 12, 3, 10, tzinfo=UTC)),
        ("2025-12-03T12:00:00+02:00", datetime(2025, 12, 3, 10, tzinfo=UTC)),
        ("2025-12-03", datetime(2025, 12, 3, tzinfo=UTC)),
        ("Wed, 03 Dec 2025 10:00:00 GMT", datetime(2025, 12, 3, 10, tzinfo=UTC)),
        ("Dec 3, 2025", datetime(2025, 12, 3, tzinfo=UTC)),
        ("  December 3,\n 2025 ", datetime(2025, 12, 3, tzinfo=UTC)),
        ("3 December 2025", datetime(2025, 12, 3, tzinfo=UTC)),
        ("Dec 3rd, 2025", datetime(2025, 12, 3, tzinfo=UTC)),
        ("Wednesday, December 3, 2025", datetime(2025, 12, 3, tzinfo=UTC)),
        ("Sept 3, 2025", datetime(2025, 9, 3, tzinfo=UTC)),
        ("Dec 3, 2025 at 10:30 AM", datetime(2025, 12, 3, 10, 30, tzinfo=UTC)),
        ("Dec 3, 2025 14:05 UTC", datetime(2025, 12, 3, 14, 5, tzinfo=UTC)),
        ("2025/12/03", datetime(2025, 12, 3, tzinfo=UTC)),
        ("03.12.2025", datetime(2025, 12, 3, tzinfo=UTC)),
    ],
)
def test_dates_are_read_tolerantly(text, moment):
    assert parse_date(text) == moment


@pytest.mark.parametrize(
    "text", ["", "yesterday", "03/12/2025", "2025-13-45", "Dec 32, 2025", "1 December"]
)
def test_unreadable_dates_give_none(text):
    assert parse_date(text) is None


# Options


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "ftp://news.example/", "item": "li", "title": "a"}, "url"),
        ({"url": "https://news.example/", "item": "li[", "title": "a"}, "item"),
        ({"url": "https://news.example/", "item": "a@href", "title": "a"}, "item"),
        ({"url": "https://news.example/", "item": "li", "title": "h2 >> a"}, "title"),
        ({"url": "https://news.example/", "item": "li", "link": "a"}, None),
        ({"url": "https://news.example/", "item": "li", "title": "a", "color": "red"}, "color"),
    ],
    ids=["not-http", "bad-item", "item-attribute", "bad-title", "nothing-to-read", "unknown"],
)
def test_bad_options_are_refused_naming_the_option(config, field):
    with pytest.raises(InvalidOptions) as caught:
        validate_config("web", config)

    location = caught.value.problems[0].location
    assert (location[0] if location else None) == field or field is None


def test_origin_is_the_normalised_url_and_the_item_selector():
    config = {"url": "https://News.Example:443/announcements/#top", "item": "li", "title": "a"}

    assert source_origin("web", config) == "https://news.example/announcements li"


def test_render_without_playwright_is_a_config_error_saying_how_to_install(monkeypatch, client):
    monkeypatch.setattr(render, "playwright_installed", lambda: False)
    config = validate_config(
        "web", {"url": "https://news.example/", "item": "li", "title": "a", "render": True}
    )

    with pytest.raises(ConfigError, match=r"pip install 'sigwatch\[render\]'"):
        build_source("web", config, client)


def test_the_default_user_agent_is_matched_as_sigwatch_and_the_refusing_rule_named():
    agent = "sigwatch/0.1 (self-hosted signal monitor)"
    robots = "User-agent: *\nDisallow: /a\n\nUser-agent: sigwatch\nDisallow: /ann*\nDisallow: /x\n"
    url = "https://news.example/announcements"

    assert web.Protego.parse(robots).can_fetch(url, agent) is False
    assert web.refusing_rule(robots, url, agent) == "Disallow: /ann*"
    assert web._product(agent) == "sigwatch"
