"""x_user and x_search read the corpus's recorded X API v2 bodies as the manifest says they hold.

Each ``x_api_v2`` entry of ``../shared/corpus/manifest.json`` is served, with its recorded
response headers when it has them, from a real server on 127.0.0.1 at the path the kind
requests, and what the kind extracts is checked against the entry's ``expect`` facts: posts
(count, first id, text, author), partial errors as warnings, ``meta`` as since_id and backfill
cursor, user lookups as the account's id, and bodies that hold no posts as ParseError.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
from test_x_source import FIXTURES, SEARCH, TOKEN, platforms

from localserver import LocalServer
from sigwatch.errors import ParseError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.registry import build_source, validate_config

MANIFEST = (Path(__file__).parents[2] / "../shared/corpus/manifest.json").resolve()
# A timeline asked for by user id (/2/users/ID/tweets) is read as x_user reads it.
_TIMELINE_PREFIX = "https://api.twitter.com/2/users/"


def _x_entries() -> list[dict[str, Any]]:
    if not MANIFEST.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return [entry for entry in entries if entry.get("kind") == "x_api_v2"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give each X API entry of the manifest its own test id (``x_entry``)."""
    if "x_entry" not in metafunc.fixturenames:
        return
    entries = _x_entries()
    if entries:
        metafunc.parametrize("x_entry", entries, ids=[entry["path"] for entry in entries])
    else:
        metafunc.parametrize("x_entry", [None], ids=["corpus-missing"])


def recorded_headers(corpus_dir: Path, entry: dict[str, Any]) -> dict[str, str]:
    """The entry's recorded response headers (or a JSON content type when none were kept)."""
    if not entry.get("headers_file"):
        return {"Content-Type": "application/json"}
    sidecar = json.loads((corpus_dir / entry["headers_file"]).read_text(encoding="utf-8"))
    return {name: str(value) for name, value in sidecar["headers"].items()}


def request_url(expect: dict[str, Any]) -> str:
    return str(expect.get("request_uri") or expect.get("twarc_request_url") or "")


def is_own_timeline(expect: dict[str, Any]) -> bool:
    path = request_url(expect).split("?", 1)[0]
    return path.startswith(_TIMELINE_PREFIX) and path.endswith("/tweets")


def source_for(kind: str, config: dict[str, Any], server: LocalServer, client: OutboundClient):
    return build_source(kind, validate_config(kind, config), client, platforms(server))


def check_posts(posts, warnings, expect: dict[str, Any]) -> None:
    """The posts and warnings of one answer against the manifest's facts about it."""
    assert len(posts) == expect["data_count"]
    first = posts[0]
    assert first.external_id == expect["first_id"]
    assert first.text.startswith(html.unescape(expect["first_text_prefix"]))
    assert first.url is not None and first.url.endswith(f"/status/{expect['first_id']}")
    user = expect.get("includes_first_user")
    if user is not None and user["id"] == expect.get("first_author_id"):
        assert first.author == f"@{user['username']}"
        assert first.url == f"https://x.com/{user['username']}/status/{expect['first_id']}"
    assert len(warnings) == expect.get("errors_count", 0)
    if expect.get("first_error_title"):
        assert expect["first_error_title"] in warnings[0]
    assert all(json.loads(json.dumps(post.raw)) == post.raw for post in posts)
    assert all("__twarc" not in post.raw["data"] for post in posts)


async def test_each_x_api_body_reads_as_the_manifest_says(x_entry, corpus_dir, server, client):
    expect = x_entry["expect"]
    body = (corpus_dir / x_entry["path"]).read_bytes()
    headers = recorded_headers(corpus_dir, x_entry)

    if x_entry["malformed"]:
        await _check_unreadable(body, headers, server, client)
    elif "first_username" in expect:
        await _check_user_lookup(body, headers, expect, server, client)
    elif "first_text_prefix" not in expect:
        # Not posts (tweet counts): a listing answered with it is unreadable, not empty.
        await _check_unreadable(body, headers, server, client)
    elif is_own_timeline(expect):
        await _check_timeline(body, headers, expect, server, client, corpus_dir)
    else:
        await _check_search(body, headers, expect, server, client)


async def _check_unreadable(body, headers, server, client) -> None:
    server.serve(SEARCH, body, headers=headers)
    with pytest.raises(ParseError):
        await source_for("x_search", {"query": "q", "bearer_token": TOKEN}, server, client).fetch(
            {}
        )


async def _check_search(body, headers, expect, server, client) -> None:
    server.serve(SEARCH, body, headers=headers)
    source = source_for("x_search", {"query": "Tweepy", "bearer_token": TOKEN}, server, client)

    result = await source.fetch({})
    check_posts(result.posts, result.warnings, expect)
    newest = expect.get("meta", {}).get("newest_id") or max(
        (p.external_id for p in result.posts), key=int
    )
    assert result.state == {"since_id": newest}
    remaining = headers.get("x-rate-limit-remaining")
    assert result.wait_s == (0.0 if remaining == "0" else None)

    page = await source.backfill({}, None)
    next_token = expect.get("meta", {}).get("next_token")
    assert page.cursor == ({"pagination_token": next_token} if next_token else None)


async def _check_timeline(body, headers, expect, server, client, corpus_dir) -> None:
    user_id = expect["request_user_id"]
    server.serve(f"/2/users/{user_id}/tweets", body, headers=headers)
    if user_id == "783214":
        # The corpus holds this account's lookup too: the source resolves it as it would live.
        lookup = corpus_dir / "x_api/users_by_username_Twitter.json"
        server.serve("/2/users/by/username/Twitter", lookup.read_bytes())
        username, state = "Twitter", {}
    else:
        username = expect["includes_first_user"]["username"]
        state = {"user_id": user_id, "username": username, "user_id_for": username.lower()}
    source = source_for("x_user", {"username": username, "bearer_token": TOKEN}, server, client)

    result = await source.fetch(state)
    check_posts(result.posts, result.warnings, expect)
    assert result.state["user_id"] == user_id
    assert result.state["since_id"] == expect["meta"]["newest_id"]
    # Without expansions (the tweepy recordings) the author is the account itself.
    assert all(
        post.author == f"@{username}"
        for post in result.posts
        if post.raw["data"].get("author_id", user_id) == user_id
    )

    page = await source.backfill(result.state, None)
    assert page.cursor == {"pagination_token": expect["meta"]["next_token"]}


async def _check_user_lookup(body, headers, expect, server, client) -> None:
    username = expect["first_username"]
    server.serve(f"/2/users/by/username/{username}", body, headers=headers)
    server.serve(
        f"/2/users/{expect['first_id']}/tweets", (FIXTURES / "no_new_posts.json").read_bytes()
    )
    source = source_for("x_user", {"username": username, "bearer_token": TOKEN}, server, client)

    result = await source.fetch({})

    assert result.state["user_id"] == expect["first_id"]
    assert result.state["username"] == username
    assert result.posts == []


def test_the_corpus_has_x_api_entries_of_every_shape(corpus_dir):
    entries = _x_entries()
    assert len(entries) >= 25
    shapes = {
        "malformed"
        if e["malformed"]
        else "users"
        if "first_username" in e["expect"]
        else "posts"
        if "first_text_prefix" in e["expect"]
        else "other"
        for e in entries
    }
    assert shapes == {"malformed", "users", "posts", "other"}
