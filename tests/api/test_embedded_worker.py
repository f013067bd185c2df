"""One process: the app started with its worker polls a source asked for through the API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from feedbuilder import rss_feed
from sigwatch.api import create_app


@pytest.fixture
def feed_url() -> Iterator[str]:
    """A real local HTTP server answering an RSS feed of three items."""
    body = rss_feed(["alpha", "beta", "gamma"])

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


async def test_poll_now_job_runs_in_the_embedded_worker_and_posts_appear(
    settings, accounts, feed_url
):
    app = create_app(settings.model_copy(update={"allow_private_urls": True}), run_worker=True)
    headers = accounts.alice.headers
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        created = await client.post(
            "/api/v1/sources",
            json={"kind": "rss", "name": "local", "config": {"url": feed_url}},
            headers=headers,
        )
        assert created.status_code == 201
        source_id = created.json()["id"]
        job = (await client.post(f"/api/v1/sources/{source_id}/poll", headers=headers)).json()

        async with asyncio.timeout(20):
            while job["status"] in ("queued", "running"):
                await asyncio.sleep(0.1)
                job = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
        assert job["status"] == "succeeded", job

        source = (await client.get(f"/api/v1/sources/{source_id}", headers=headers)).json()
        assert source["post_count"] == 3 and source["last_success_at"] is not None
        posts = (await client.get("/api/v1/posts", headers=headers)).json()["items"]
        assert [post["title"] for post in posts] == ["gamma", "beta", "alpha"]
