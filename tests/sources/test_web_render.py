"""`web` sources with `render: true`: a real headless Chromium runs the page's scripts, and every
request it makes goes through the outbound client (guard included) to the local server.

These need Playwright and Chromium (`.ci/run` installs Chromium); elsewhere they skip, saying so.
"""

from __future__ import annotations

import json
import os

import pytest

from localserver import LocalServer
from sigwatch.errors import ParseError
from sigwatch.sources.base import Platforms
from sigwatch.sources.registry import build_source, validate_config
from sigwatch.sources.render import find_browser, playwright_installed

ITEMS = [
    {"path": "/news/tge", "title": "Example Protocol announces its TGE"},
    {"path": "/news/listing", "title": "Exchange lists EXM"},
]


def page(private_url: str) -> bytes:
    """A listing whose items only a script builds, from an API on the same host; it also tries
    an address the guard refuses and an image nobody needs."""
    return f"""<!doctype html><html><head><title>News</title></head><body>
<ul id="news"></ul><img src="/pixel.png">
<script>
fetch("/api/items.json").then(r => r.json()).then(items => {{
  const list = document.getElementById("news");
  for (const item of items) {{
    const li = document.createElement("li");
    li.innerHTML = `<a href="${{item.path}}">${{item.title}}</a>`;
    list.appendChild(li);
  }}
}});
fetch("{private_url}").catch(() => {{}});
</script></body></html>""".encode()


@pytest.fixture
def browser_path() -> str:
    path = find_browser(None)
    if not playwright_installed() or path is None:
        reason = "rendering needs Playwright and Chromium (apt install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: .ci/run installs them")
        pytest.skip(reason)
    return path


def serve_listing(server: LocalServer, private: LocalServer) -> str:
    server.serve(
        "/api/items.json", json.dumps(ITEMS).encode(), headers={"Content-Type": "application/json"}
    )
    return server.serve(
        "/news", page(private.url("/secret")), headers={"Content-Type": "text/html"}
    )


async def test_a_rendered_page_yields_the_items_its_scripts_build(
    server, start_server, client, browser_path
):
    private = start_server("127.0.0.2")  # loopback, but not an address the guard allows
    url = serve_listing(server, private)
    config = validate_config(
        "web", {"url": url, "item": "#news li", "title": "a", "link": "a@href", "render": True}
    )
    source = build_source("web", config, client, Platforms(browser_path=browser_path))

    result = await source.fetch({})

    assert [post.title for post in result.posts] == [item["title"] for item in ITEMS]
    assert [post.url for post in result.posts] == [server.url(item["path"]) for item in ITEMS]
    asked = {request.path: request.headers.get("user-agent") for request in server.requests}
    # Every request went through the outbound client: its User-Agent, robots.txt first.
    assert set(asked) == {"/robots.txt", "/news", "/api/items.json"}
    assert set(asked.values()) == {"sigwatch-test/1"}
    assert private.requests == []  # refused by the guard, never reached


async def test_without_rendering_the_same_page_has_no_items(server, start_server, client):
    url = serve_listing(server, start_server("127.0.0.2"))
    config = validate_config("web", {"url": url, "item": "#news li", "title": "a"})

    with pytest.raises(ParseError, match="built by JavaScript"):
        await build_source("web", config, client).fetch({})
