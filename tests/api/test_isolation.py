"""Two users, one story: nothing Bob's private source collected ever reaches Alice.

Alice and Bob each have a private feed that reports the same Helix airdrop in other words; Bob's
post carries words ("zebracorn", his own host and source name) that appear nowhere else. Every
read path is checked for them: the alert list, search, detail, history, export, webhooks
(including a retry after Bob's post arrived), digests and subscriptions. The live streams are
checked the same way in tests/live/ (test_websocket.py, test_sse.py, test_events.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from feedbuilder import rss_feed
from localserver import Handler, LocalServer, Static
from sigwatch.config import Settings
from sigwatch.db.models import Delivery
from sigwatch.db.types import utcnow
from sigwatch.worker.runner import Worker, collect_once

ALICES = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"
BOBS = "Helix Network airdrop claim is now open, zebracorn eligibility checker is live"
SECRET_WORDS = ("zebracorn", "bob.example", "Bob private desk")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Local feeds and receivers are reachable; retries come quickly."""
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "delivery_retry_base_s": 0.1}
    )


class Receiver:
    """A webhook receiver on the local server that answers 503 to its first ``fail`` requests."""

    def __init__(self, server: LocalServer, path: str, fail: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.fail = fail
        self.url = server.url(path)
        server.routes[path] = self._answer

    def _answer(self, handler: Handler) -> None:
        self.bodies.append(handler.server.owner.requests[-1].body)
        failing = len(self.bodies) <= self.fail
        handler.send_static(Static(b"busy" if failing else b"ok", 503 if failing else 200))

    def messages(self) -> list[dict[str, Any]]:
        """Every body received, parsed."""
        return [json.loads(body)["data"] for body in self.bodies]


@dataclass
class Story:
    """The two users' sources, channels and receivers."""

    alice_source: int
    bob_source: int | None
    alice_hook: Receiver
    bob_hook: Receiver


async def post(client: Any, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    answer = await client.post(path, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def watch_helix(client: Any, accounts: Any) -> None:
    """The admin puts Helix Network on the shared watchlist."""
    await post(
        client,
        "/api/v1/entities",
        accounts.admin.headers,
        {"name": "Helix Network", "aliases": ["Helix"], "symbols": ["HLX"]},
    )


async def subscribe(
    client: Any, headers: dict[str, str], hook: str, kind: str = "webhook", **extra: Any
) -> int:
    channel = await post(
        client, "/api/v1/channels", headers, {"kind": kind, "name": kind, "config": {"url": hook}}
    )
    await post(
        client,
        "/api/v1/subscriptions",
        headers,
        {"name": "all", "channel_ids": [channel["id"]], **extra},
    )
    return int(channel["id"])


async def add_feed(client: Any, server: LocalServer, headers: dict[str, str], who: str) -> int:
    title, link = (
        (ALICES, "https://alice.example") if who == "alice" else (BOBS, "https://bob.example")
    )
    url = server.serve(f"/{who}.xml", rss_feed([title], link=link))
    name = "Alice desk" if who == "alice" else "Bob private desk"
    created = await post(
        client, "/api/v1/sources", headers, {"kind": "rss", "name": name, "config": {"url": url}}
    )
    return int(created["id"])


async def collect(settings: Settings, sessions: Any, source_id: int) -> None:
    outcomes = await collect_once(settings, sessions, [source_id])
    assert all(outcome.ok for outcome in outcomes), outcomes


async def run_worker_until(
    settings: Settings, sessions: Any, done: Callable[[], bool], timeout_s: float = 15
) -> None:
    """Run a worker (deliveries and due polls) until ``done()``."""
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def make_due(sessions: Any) -> None:
    """Every pending delivery (a retry or a digest) is due now."""
    async with sessions.begin() as session:
        await session.execute(
            update(Delivery).where(Delivery.status == "pending").values(next_attempt_at=utcnow())
        )


@pytest.fixture
async def story(client, accounts, settings, sessions, server) -> Story:
    """Alice's feed reports the airdrop first while her receiver answers 503; then Bob's does."""
    await watch_helix(client, accounts)
    alice_hook = Receiver(server, "/alice-hook", fail=1)
    bob_hook = Receiver(server, "/bob-hook")
    await subscribe(client, accounts.alice.headers, alice_hook.url)
    await subscribe(client, accounts.bob.headers, bob_hook.url)
    alice_source = await add_feed(client, server, accounts.alice.headers, "alice")
    await collect(settings, sessions, alice_source)
    await run_worker_until(settings, sessions, lambda: len(alice_hook.bodies) >= 1)
    return Story(alice_source, None, alice_hook, bob_hook)


async def bob_corroborates(client, accounts, settings, sessions, server, story: Story) -> None:
    story.bob_source = await add_feed(client, server, accounts.bob.headers, "bob")
    await collect(settings, sessions, story.bob_source)


def assert_nothing_of_bobs(text: str) -> None:
    for word in SECRET_WORDS:
        assert word not in text, f"{word!r} leaked: {text[:500]}"


async def test_a_retried_delivery_carries_only_the_channel_owners_evidence(
    client, accounts, settings, sessions, server, story
):
    await bob_corroborates(client, accounts, settings, sessions, server, story)
    await make_due(sessions)
    await run_worker_until(
        settings,
        sessions,
        lambda: len(story.alice_hook.bodies) >= 2 and len(story.bob_hook.bodies) >= 1,
    )
    retried = story.alice_hook.bodies[-1].decode()
    assert_nothing_of_bobs(retried)
    assert "alice.example" in retried and "1 source" in retried
    # Bob's own post makes the story new to him: his subscription fires, with his evidence only.
    (bobs,) = story.bob_hook.messages()
    assert bobs["kind"] == "new"
    assert "alice.example" not in json.dumps(bobs) and "Alice desk" not in json.dumps(bobs)
    assert [item["source"] for item in bobs["evidence"]] == ["Bob private desk"]


async def test_the_alert_list_search_detail_and_export_show_only_the_viewers_evidence(
    client, accounts, settings, sessions, server, story
):
    await bob_corroborates(client, accounts, settings, sessions, server, story)
    as_admin = (await client.get("/api/v1/alerts", headers=accounts.admin.headers)).json()
    (whole,) = as_admin["items"]
    assert whole["source_count"] == 2 and whole["evidence_count"] == 2
    for who, own_source, own_title in (
        ("alice", story.alice_source, ALICES),
        ("bob", story.bob_source, BOBS),
    ):
        headers = getattr(accounts, who).headers
        (alert,) = (await client.get("/api/v1/alerts", headers=headers)).json()["items"]
        assert alert["id"] == whole["id"]
        assert alert["title"] == own_title
        assert alert["first_source_id"] == own_source
        assert (alert["source_count"], alert["evidence_count"]) == (1, 1)
        assert alert["lead_time_s"] is None
        assert alert["confidence"] < whole["confidence"]  # corroborated only by the other's post
        detail = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=headers)).json()
        assert [item["source_id"] for item in detail["evidence"]] == [own_source]
        assert [change["action"] for change in detail["history"]] == ["created"]
        assert all(
            change["detail"].get("source_id") in (None, own_source) for change in detail["history"]
        )
        # A filter on the whole story's confidence does not find it for a single-source viewer.
        between = (alert["confidence"] + whole["confidence"]) / 2
        found = await client.get(
            "/api/v1/alerts", params={"min_confidence": between}, headers=headers
        )
        assert found.json()["items"] == []
    alice = accounts.alice.headers
    text = json.dumps((await client.get("/api/v1/alerts", headers=alice)).json())
    detail = await client.get(f"/api/v1/alerts/{whole['id']}", headers=alice)
    assert_nothing_of_bobs(text + detail.text)
    # Words only in Bob's post find nothing for Alice, and find the alert for Bob and the admin.
    for headers, expected in ((alice, 0), (accounts.bob.headers, 1), (accounts.admin.headers, 1)):
        found = await client.get("/api/v1/alerts", params={"q": "zebracorn"}, headers=headers)
        assert len(found.json()["items"]) == expected
    for fmt in ("jsonl", "csv"):
        exported = await client.get("/api/v1/alerts/export", params={"format": fmt}, headers=alice)
        assert exported.status_code == 200
        assert_nothing_of_bobs(exported.text)
    (row,) = [
        json.loads(line)
        for line in (
            await client.get("/api/v1/alerts/export", params={"format": "jsonl"}, headers=alice)
        ).text.splitlines()
    ]
    assert row["source_count"] == 1 and row["first_source_id"] == story.alice_source


async def test_a_status_change_reaches_every_viewer_but_tells_no_one_else_s_evidence(
    client, accounts, settings, sessions, server, story
):
    await bob_corroborates(client, accounts, settings, sessions, server, story)
    (alert,) = (await client.get("/api/v1/alerts", headers=accounts.bob.headers)).json()["items"]
    changed = await client.post(
        "/api/v1/alerts/status",
        json={"ids": [alert["id"]], "status": "acknowledged"},
        headers=accounts.bob.headers,
    )
    assert changed.status_code == 200
    (shown,) = changed.json()
    assert shown["source_count"] == 1 and shown["first_source_id"] == story.bob_source
    detail = await client.get(f"/api/v1/alerts/{alert['id']}", headers=accounts.alice.headers)
    assert detail.json()["status"] == "acknowledged"
    assert [change["action"] for change in detail.json()["history"]] == ["created", "status"]
    assert_nothing_of_bobs(detail.text)


async def test_a_digest_tells_only_its_owners_evidence(
    client, accounts, settings, sessions, server
):
    await watch_helix(client, accounts)
    digest = Receiver(server, "/alice-digest")
    await subscribe(client, accounts.alice.headers, digest.url, mode="hourly")
    alice_source = await add_feed(client, server, accounts.alice.headers, "alice")
    bob_source = await add_feed(client, server, accounts.bob.headers, "bob")
    # Bob's source sees the story first: his post leads it, and to Alice it is new with hers.
    await collect(settings, sessions, bob_source)
    await collect(settings, sessions, alice_source)
    await make_due(sessions)
    await run_worker_until(settings, sessions, lambda: len(digest.bodies) >= 1)
    (message,) = digest.messages()
    assert message["kind"] == "digest"
    assert_nothing_of_bobs(json.dumps(message))
    assert [item["source"] for item in message["evidence"]] == ["Alice desk"]


async def test_an_alert_only_another_users_source_saw_is_not_there_at_all(
    client, accounts, settings, sessions, server, story
):
    (alert,) = (await client.get("/api/v1/alerts", headers=accounts.alice.headers)).json()["items"]
    bob = accounts.bob.headers
    assert (await client.get("/api/v1/alerts", headers=bob)).json()["items"] == []
    assert (await client.get(f"/api/v1/alerts/{alert['id']}", headers=bob)).status_code == 404
    moved = await client.post(
        "/api/v1/alerts/status", json={"ids": [alert["id"]], "status": "dismissed"}, headers=bob
    )
    assert moved.status_code == 404


async def test_an_apprise_notification_tells_only_its_owners_evidence(
    client, accounts, settings, sessions, server
):
    await watch_helix(client, accounts)
    chat = Receiver(server, "/alice-chat")
    await subscribe(
        client, accounts.alice.headers, chat.url.replace("http://", "json://"), kind="apprise"
    )
    bob_source = await add_feed(client, server, accounts.bob.headers, "bob")
    alice_source = await add_feed(client, server, accounts.alice.headers, "alice")
    await collect(settings, sessions, bob_source)
    await collect(settings, sessions, alice_source)
    await run_worker_until(settings, sessions, lambda: len(chat.bodies) >= 1)
    (body,) = chat.bodies
    assert "Helix Network" in body.decode() and "alice.example" in body.decode()
    assert_nothing_of_bobs(body.decode())
