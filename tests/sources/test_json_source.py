"""The json source kind: expressions, posts, dates, links, conditional GET and POST."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sigwatch.errors import InvalidOptions, ParseError
from sigwatch.sources.json_api import JsonApiSource, JsonOptions, parse_date
from sigwatch.sources.registry import SOURCE_REGISTRY, build_source

TOKEN = "Bearer json-s3cr3t-value"
JSON = {"Content-Type": "application/json"}

ARTICLES = [
    {
        "id": 101,
        "slug": "example-tge",
        "title": "Example <b>Protocol</b> announces its TGE",
        "body": "<p>Claim opens <a href='/claim'>Friday</a>.</p><script>x()</script>",
        "path": "/news/example-tge",
        "published": 1742369411614,
    },
    {
        "id": "102",
        "slug": "second",
        "title": "Second listing",
        "body": "Plain text body",
        "path": "https://other.example/second",
        "published": "2025-03-19T07:30:11+09:00",
    },
]


def serve(server, body: Any, path: str = "/api/news", **headers: str) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.serve(path, raw, headers={**JSON, **headers})


def source(client, **config: Any) -> JsonApiSource:
    built = build_source("json", SOURCE_REGISTRY.clear_config("json", config), client)
    assert isinstance(built, JsonApiSource)
    return built


async def test_each_item_becomes_a_post_with_id_title_text_link_date_and_raw(server, client):
    url = serve(server, {"data": {"articles": ARTICLES}})
    result = await source(
        client,
        url=url,
        items="data.articles",
        id="id",
        title="title",
        text="body",
        link="path",
        date="published",
    ).fetch({})

    first, second = result.posts
    assert [first.external_id, second.external_id] == ["101", "102"]
    assert first.title == "Example Protocol announces its TGE"
    assert first.text == "Claim opens Friday."
    assert first.html is not None and "script" not in first.html
    assert f"http://127.0.0.1:{server.port}/claim" in first.html
    assert first.url == f"http://127.0.0.1:{server.port}/news/example-tge"
    assert second.url == "https://other.example/second"
    assert first.published_at == datetime(2025, 3, 19, 7, 30, 11, 614000, tzinfo=UTC)
    assert second.published_at == datetime(2025, 3, 18, 22, 30, 11, tzinfo=UTC)
    assert first.raw == ARTICLES[0]
    assert second.html is None and result.warnings == []


async def test_text_falls_back_to_the_title(server, client):
    url = serve(server, [{"title": "Only a title"}])
    result = await source(client, url=url, items="@", title="title").fetch({})
    assert result.posts[0].text == "Only a title"


async def test_without_an_id_expression_the_link_then_a_hash_is_the_id(server, client):
    url = serve(server, [{"t": "linked", "u": "/a"}, {"t": "unlinked"}])
    posts = (await source(client, url=url, items="@", title="t", link="u").fetch({})).posts
    assert posts[0].external_id == f"http://127.0.0.1:{server.port}/a"
    assert posts[1].external_id.startswith("sha256:") and posts[1].url is None


async def test_a_link_template_is_filled_from_the_item_and_percent_encoded(server, client):
    items = [{"t": "a", "code": "917a66f6"}, {"t": "b", "code": "x y/z"}, {"t": "c"}]
    url = serve(server, items)
    posts = (
        await source(
            client, url=url, items="@", title="t", link="https://example.com/news/{code}"
        ).fetch({})
    ).posts
    assert [post.url for post in posts] == [
        "https://example.com/news/917a66f6",
        "https://example.com/news/x%20y%2Fz",
        None,
    ]


async def test_a_link_template_takes_dotted_fields(server, client):
    url = serve(server, [{"t": "a", "meta": {"slug": "deep"}}])
    posts = (
        await source(client, url=url, items="@", title="t", link="https://e.com/{meta.slug}").fetch(
            {}
        )
    ).posts
    assert posts[0].url == "https://e.com/deep"


async def test_items_without_a_usable_id_or_text_are_skipped_with_a_warning(server, client):
    items = [
        {"id": 1, "title": "kept"},
        {"id": None, "title": "no id"},
        {"id": {"nested": 1}, "title": "object id"},
        {"id": 4, "title": "   "},
        {"id": 1, "title": "repeats the first id"},
    ]
    url = serve(server, {"items": items})
    result = await source(client, url=url, items="items", id="id", title="title").fetch({})

    assert [post.title for post in result.posts] == ["kept"]
    assert len(result.warnings) == 3
    no_id, no_text, repeated = result.warnings
    assert "skipped 2 of 5 items (at 1, 2" in no_id and "'id'" in no_id
    assert "skipped 1 of 5 items (at 3" in no_text and "'title'" in no_text
    assert "at 4" in repeated


async def test_an_unreadable_date_is_a_warning_and_the_post_is_kept(server, client):
    url = serve(server, [{"t": "a", "d": "next Tuesday"}])
    result = await source(client, url=url, items="@", title="t", date="d").fetch({})
    assert result.posts[0].published_at is None
    assert "'d' gave no readable date for 1 of 1 items" in result.warnings[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1742369411, datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        (1742369411614, datetime(2025, 3, 19, 7, 30, 11, 614000, tzinfo=UTC)),
        ("1742369411614", datetime(2025, 3, 19, 7, 30, 11, 614000, tzinfo=UTC)),
        (1742369411.5, datetime(2025, 3, 19, 7, 30, 11, 500000, tzinfo=UTC)),
        ("2025-03-19T07:30:11Z", datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        ("2025-03-19 16:30:11+09:00", datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        ("2025-03-19", datetime(2025, 3, 19, tzinfo=UTC)),
        ("2025-03-19T07:30:11", datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        ("Wed, 19 Mar 2025 07:30:11 GMT", datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        ("Wed, 19 Mar 2025 08:30:11 +0100", datetime(2025, 3, 19, 7, 30, 11, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (True, None),
        (None, None),
        ({"at": 1}, None),
        (float("nan"), None),
        (10**30, None),
    ],
)
def test_dates_are_read_as_epoch_seconds_milliseconds_iso_8601_or_rfc_2822(value, expected):
    assert parse_date(value) == expected


async def test_a_second_get_is_conditional_and_not_modified(server, client):
    url = serve(server, [{"t": "a"}], ETag='"v1"', **{"Last-Modified": "Wed, 19 Mar 2025"})
    json_source = source(client, url=url, items="@", title="t")
    first = await json_source.fetch({})
    again = await json_source.fetch(first.state)

    assert first.state == {"etag": '"v1"', "last_modified": "Wed, 19 Mar 2025"}
    assert again.not_modified and again.posts == []
    assert server.requests[1].headers["if-none-match"] == '"v1"'


async def test_headers_are_sent_and_the_source_headers_win(server, client):
    url = serve(server, [{"t": "a"}])
    headers = {"Authorization": TOKEN, "accept": "application/vnd.api+json"}
    await source(client, url=url, items="@", title="t", headers=headers).fetch({})
    sent = server.requests[0].headers
    assert sent["authorization"] == TOKEN and sent["accept"] == "application/vnd.api+json"


async def test_post_sends_the_body_as_json_and_reads_the_answer(server, client):
    url = serve(server, {"data": [{"t": "posted"}]})
    body = {"catalogId": 48, "pageNo": 1}
    result = await source(
        client, url=url, items="data", title="t", method="post", body=body, headers={"X": "y"}
    ).fetch({"etag": "kept"})

    request = server.requests[0]
    assert request.method == "POST" and json.loads(request.body) == body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x"] == "y" and "if-none-match" not in request.headers
    assert result.posts[0].text == "posted" and result.state == {"etag": "kept"}


async def test_items_giving_no_list_is_a_parse_error_naming_the_expression(server, client):
    url = serve(server, {"code": "100001", "message": "busy", "data": None})
    with pytest.raises(ParseError) as caught:
        await source(client, url=url, items="data.articles", title="t").fetch({})
    assert "'data.articles' gave nothing, not a list" in str(caught.value)


async def test_items_giving_an_object_says_so(server, client):
    url = serve(server, {"data": {"articles": {"a": 1}}})
    with pytest.raises(ParseError, match="gave a JSON object, not a list"):
        await source(client, url=url, items="data.articles", title="t").fetch({})


async def test_an_empty_list_is_no_posts_and_no_error(server, client):
    url = serve(server, {"data": []})
    result = await source(client, url=url, items="data", title="t").fetch({})
    assert result.posts == [] and result.warnings == []


def test_every_expression_is_compiled_once_at_validation():
    options = JsonOptions.model_validate(
        {"url": "https://api.example/x", "items": "data[]", "title": "t", "date": "d"}
    )
    assert options.items.compiled.search({"data": [1]}) == [1]
    assert SOURCE_REGISTRY.clear_config("json", options.model_dump())["items"] == "data[]"


@pytest.mark.parametrize(
    ("option", "expression", "said"),
    [
        ("items", "data[", "ends too early"),
        ("items", "data.[a b]", "unexpected"),
        ("title", "a ~ b", "unexpected character at position 2"),
        ("text", "nope(body)", "calls nope(), which JMESPath does not have"),
        ("date", "to_number(a, b)", "with 2 arguments; it takes 1"),
        ("id", "   ", "must not be blank"),
        ("link", "https://e.com/{a}{", "{ or } that is not part of a {field} placeholder"),
        ("link", "https://e.com/{a[0]}", "is not a field name"),
        ("link", "https://e.com/all", "without a {field} placeholder"),
    ],
)
def test_a_bad_expression_is_refused_naming_the_option_and_the_problem(option, expression, said):
    config = {"url": "https://api.example/x", "items": "data", "title": "t", option: expression}
    with pytest.raises(InvalidOptions) as caught:
        SOURCE_REGISTRY.validate("json", config)
    assert caught.value.problems[0].location == (option,)
    assert said in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("config", "option", "said"),
    [
        ({"title": None}, "title", "give title or text"),
        ({"body": {"a": 1}}, "body", "only with method POST"),
        ({"method": "PUT"}, "method", "'GET' or 'POST'"),
        ({"url": "file:///etc/passwd"}, "url", "http:// or https://"),
        ({"headers": {"Bad Name": TOKEN}}, "headers", "is not a header name"),
        ({"headers": {"Host": TOKEN}}, "headers", "set by sigwatch itself"),
        ({"headers": {"Authorization": TOKEN + "\r\nX: y"}}, "headers", "one line of printable"),
        ({"headers": {"Authorization": ""}}, "headers", "must not be blank"),
        ({"color": "blue"}, "color", "Extra inputs"),
    ],
)
def test_bad_options_are_refused_without_echoing_header_values(config, option, said):
    given = {"url": "https://api.example/x", "items": "data", "title": "t", **config}
    with pytest.raises(InvalidOptions) as caught:
        SOURCE_REGISTRY.validate("json", given)
    problem = caught.value.problems[0]
    assert problem.location[0] == option and said in problem.message
    assert "s3cr3t" not in str(caught.value)


def test_the_origin_is_method_normalised_url_and_items_and_post_adds_the_body():
    base = {"url": "HTTPS://API.Example:443/v1/news/?page=1#top", "items": "data", "title": "t"}
    get = SOURCE_REGISTRY.validate("json", base)
    post = SOURCE_REGISTRY.validate("json", {**base, "method": "POST", "body": {"b": 1, "a": 2}})
    big = SOURCE_REGISTRY.validate("json", {**base, "method": "POST", "body": {"a": "x" * 300}})

    assert get.origin() == "GET https://api.example/v1/news?page=1 data"  # type: ignore[attr-defined]
    assert post.origin() == 'POST https://api.example/v1/news?page=1 data {"a":2,"b":1}'  # type: ignore[attr-defined]
    assert big.origin().split()[-1].startswith("sha256:")  # type: ignore[attr-defined]


def test_header_values_are_sealed_and_masked_like_every_secret():
    config = {"url": "https://api.example/x", "items": "d", "title": "t"}
    clear = SOURCE_REGISTRY.clear_config("json", {**config, "headers": {"X-Key": TOKEN}})
    key = "json-test-secret-key-that-is-long-enough-0123456789"
    sealed = SOURCE_REGISTRY.seal("json", clear, key)
    assert TOKEN not in json.dumps(sealed)
    assert TOKEN not in json.dumps(SOURCE_REGISTRY.shown("json", sealed, key))
    assert SOURCE_REGISTRY.open("json", sealed, key)["headers"] == {"X-Key": TOKEN}


async def test_a_key_header_is_not_sent_on_when_a_redirect_leads_to_another_origin(
    server, start_server, client
):
    other = start_server("127.0.0.1")
    serve(other, {"items": ARTICLES})
    server.redirect("/api/news", other.url("/api/news"))
    same_host = serve(server, {"items": ARTICLES}, path="/api/v2")
    server.redirect("/api/old", same_host)

    for path in ("/api/news", "/api/old"):
        fetched = await source(
            client,
            url=server.url(path),
            items="items",
            id="id",
            title="title",
            headers={"X-Api-Key": "k3y-for-this-host-only"},
        ).fetch({})
        assert len(fetched.posts) == 2

    assert [r.headers.get("x-api-key") for r in other.requests] == [None]
    assert [r.headers.get("x-api-key") for r in server.requests] == ["k3y-for-this-host-only"] * 3
