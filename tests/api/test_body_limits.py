"""Bodies the app must not take in: too large (sized or chunked), nested too deep, YAML bombs.

Each is answered with a 4xx that names the limit, before any route runs; none gives a 500.
Chunked uploads go through a real uvicorn server on 127.0.0.1, since the ASGI test transport
always sends a sized body.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from live.support import receive_json, serving, ws_client
from sigwatch.api.middleware import MAX_JSON_DEPTH, MAX_REQUEST_BYTES
from sigwatch.detect.watchlist import MAX_YAML_DEPTH

CHUNK = b" " * 65_536


async def chunks(total_bytes: int, head: bytes = b"") -> AsyncIterator[bytes]:
    """``head`` then spaces, ``total_bytes`` in all, sent as a chunked body."""
    yield head
    sent = len(head)
    while sent < total_bytes:
        piece = CHUNK[: total_bytes - sent]
        sent += len(piece)
        yield piece
        await asyncio.sleep(0)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
async def served(app) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app served by uvicorn on 127.0.0.1."""
    async with serving(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            yield http


async def test_a_chunked_body_over_the_cap_is_413_like_a_sized_one(served, accounts):
    headers = {**accounts.admin.headers, "Content-Type": "application/json"}
    too_much = MAX_REQUEST_BYTES + 100_000
    for path in ("/api/v1/entities", "/api/v1/auth/token"):
        sized = await served.post(path, content=b" " * too_much, headers=headers)
        assert sized.status_code == 413, (path, sized.text)
        chunked = await served.post(path, content=chunks(too_much, b'{"name":'), headers=headers)
        assert chunked.status_code == 413, (path, chunked.status_code, chunked.text)
        assert f"larger than {MAX_REQUEST_BYTES} bytes" in chunked.json()["detail"]
        assert "X-Request-ID" in chunked.headers


async def test_a_chunked_body_under_the_cap_reaches_the_route_whole(served, accounts):
    body = b'{"name": "Chunked Coin", "symbols": ["CHK"]}'
    answer = await served.post(
        "/api/v1/entities",
        content=chunks(len(body) + 200_000, body),  # trailing whitespace is still valid JSON
        headers={**accounts.admin.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "Chunked Coin"


DEEP_JSON_ROUTES = [
    ("POST", "/api/v1/auth/token", "application/json"),
    ("PUT", "/api/v1/watchlist", "application/json"),
    ("POST", "/api/v1/entities", "application/json"),
    ("POST", "/api/v1/detect", "application/merge-patch+json"),
    ("POST", "/api/v1/sources", None),  # untyped: a route may still parse it as JSON
]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 400_000])
async def test_deeply_nested_json_is_422_naming_the_limit_on_every_route(client, accounts, depth):
    for method, path, content_type in DEEP_JSON_ROUTES:
        headers = dict(accounts.admin.headers)
        if content_type:
            headers["Content-Type"] = content_type
        body = '{"name": ' + nested(depth) + "}"
        answer = await client.request(method, path, content=body, headers=headers)
        assert answer.status_code == 422, (path, depth, answer.text[:300])
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body"] and error["type"] == "json_too_deep", path
        assert f"deeper than {MAX_JSON_DEPTH} levels" in error["msg"]


async def test_nesting_at_the_limit_and_brackets_inside_strings_are_not_refused(client, accounts):
    headers = accounts.admin.headers
    at_limit = await client.post(
        "/api/v1/entities",
        content='{"name": ' + nested(MAX_JSON_DEPTH - 1) + "}",
        headers={**headers, "Content-Type": "application/json"},
    )
    # Parsed and validated as usual: the name is not a string.
    assert at_limit.status_code == 422, at_limit.text
    assert at_limit.json()["detail"][0]["loc"] == ["body", "name"], at_limit.text
    text = '[{"\\"' * 1_500 + "]" * 10
    detected = await client.post("/api/v1/detect", json={"text": text}, headers=headers)
    assert detected.status_code == 200, detected.text


YAML = {"Content-Type": "application/yaml"}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("[" * 100_000, id="flow-sequences"),
        pytest.param("entities: " + "{a: " * 50_000, id="flow-mappings"),
        pytest.param(
            "entities: []\nrules:\n" + "".join("  " * (n + 1) + f"k{n}:\n" for n in range(600)),
            id="block-mappings",
        ),
        pytest.param("entities:\n" + "".join(" " * n + "- \n" for n in range(1, 600)), id="lists"),
    ],
)
async def test_deep_yaml_watchlist_is_422_naming_the_limit_at_once(client, accounts, document):
    started = time.monotonic()
    answer = await client.put(
        "/api/v1/watchlist", content=document, headers={**accounts.admin.headers, **YAML}
    )
    assert answer.status_code == 422, answer.text[:300]
    assert f"nests deeper than {MAX_YAML_DEPTH} levels" in answer.json()["detail"][0]["msg"]
    assert time.monotonic() - started < 2


async def test_yaml_anchors_are_never_expanded_into_a_billion_laughs(client, accounts):
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for name, previous in zip("bcdefghij", "abcdefghi", strict=True):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    document = "entities:\n  - name: Laughs\n    aliases: *j\n"
    started = time.monotonic()
    for body in (bomb, bomb.replace("a: &a", "entities: &a", 1), bomb + document):
        answer = await client.put(
            "/api/v1/watchlist", content=body, headers={**accounts.admin.headers, **YAML}
        )
        assert answer.status_code == 422, answer.text[:300]
    assert time.monotonic() - started < 2
    listed = await client.get("/api/v1/entities", headers=accounts.admin.headers)
    assert listed.json()["items"] == []


async def test_anchors_that_reuse_a_list_still_import(client, accounts):
    document = "entities:\n  - name: A\n    tags: &t [defi]\n  - name: B\n    tags: *t\n"
    answer = await client.put(
        "/api/v1/watchlist", content=document, headers={**accounts.admin.headers, **YAML}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["added"] == 2


async def test_a_deeply_nested_websocket_message_is_answered_and_the_socket_stays(app, accounts):
    token = accounts.alice.headers["Authorization"].removeprefix("Bearer ")
    async with serving(app) as address:
        async with ws_client(f"ws://{address}/api/v1/ws?token={token}") as ws:
            assert (await receive_json(ws))["type"] == "hello"
            await ws.send('{"type": "subscribe", "filters": ' + nested(30_000) + "}")
            answer = await receive_json(ws)
            assert answer["type"] == "error", answer
            assert f"deeper than {MAX_JSON_DEPTH} levels" in json.dumps(answer)
            await ws.send('{"type": "ping"}')
            assert (await receive_json(ws))["type"] == "pong"


async def test_a_json_body_that_is_not_unicode_text_is_422_naming_the_encoding(client, accounts):
    headers = {**accounts.admin.headers, "Content-Type": "application/json"}
    for path in ("/api/v1/auth/refresh", "/api/v1/entities", "/api/v1/sources"):
        answer = await client.post(path, content=b'{"name": "\xff\xfe\x07"}', headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        [error] = answer.json()["detail"]
        assert error["type"] == "json_invalid" and "send JSON encoded as UTF-8" in error["msg"]
