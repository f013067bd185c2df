"""``POST /api/v1/sources/{id}/backfill``: a job a worker runs, followed at ``/api/v1/jobs/{id}``.

A paging test kind serves a timeline from the real local server; a worker runs beside the app,
on SQLite and PostgreSQL. Users backfill only their own sources and read only their own jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from feedbuilder import rss_feed
from sigwatch.worker.runner import Worker
from worker.test_backfill_kind import Timeline, register


@pytest.fixture(autouse=True)
def timeline_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)


@pytest.fixture
async def worker(settings, sessions) -> AsyncIterator[None]:
    """A worker beside the app, allowed to reach the local server."""
    allowed = settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(allowed, sessions, idle_tick_s=0.05).run(stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


async def add_timeline(client, account, timeline: Timeline) -> int:
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "timeline", "name": "someone", "config": {"url": timeline.url}},
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def finished(client, account, job_id: int) -> dict:
    async with asyncio.timeout(15):
        while True:
            answer = await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)
            assert answer.status_code == 200, answer.text
            job = answer.json()
            if job["status"] in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.05)


async def test_a_backfill_job_is_accepted_run_by_the_worker_and_readable_with_its_counters(
    client, accounts, server, worker
):
    timeline = Timeline(server, count=23)
    source_id = await add_timeline(client, accounts.alice, timeline)

    answer = await client.post(
        f"/api/v1/sources/{source_id}/backfill",
        json={"limit": 100},
        headers=accounts.alice.headers,
    )

    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["kind"] == "backfill" and accepted["status"] == "queued"
    assert accepted["source_id"] == source_id and accepted["requested_by"] == accounts.alice.id
    job = await finished(client, accounts.alice, accepted["id"])
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    counters = job["counters"]
    assert {name: counters[name] for name in ("fetched", "pages", "updated", "left_to_poll")} == {
        "fetched": 23,
        "pages": 5,
        "updated": 0,
        "left_to_poll": 0,
    }
    # The worker also polls the new source, which may store the newest page first.
    assert 18 <= counters["new"] <= 23
    listed = await client.get(
        "/api/v1/posts",
        params={"source_id": source_id, "limit": 200},
        headers=accounts.alice.headers,
    )
    assert len(listed.json()["items"]) == 23


async def test_bob_can_neither_backfill_alices_source_nor_read_her_backfill_job(
    client, accounts, server
):
    source_id = await add_timeline(client, accounts.alice, Timeline(server, count=3))
    accepted = await client.post(
        f"/api/v1/sources/{source_id}/backfill", json={"limit": 10}, headers=accounts.alice.headers
    )
    assert accepted.status_code == 202

    refused = await client.post(
        f"/api/v1/sources/{source_id}/backfill", json={"limit": 10}, headers=accounts.bob.headers
    )
    hidden = await client.get(f"/api/v1/jobs/{accepted.json()['id']}", headers=accounts.bob.headers)
    seen_by_admin = await client.get(
        f"/api/v1/jobs/{accepted.json()['id']}", headers=accounts.admin.headers
    )

    assert refused.status_code == 404 and hidden.status_code == 404
    assert seen_by_admin.status_code == 200


async def test_an_interrupted_backfill_asked_again_goes_on_in_the_same_job(
    client, accounts, server, worker
):
    timeline = Timeline(server, count=25)
    source_id = await add_timeline(client, accounts.alice, timeline)
    timeline.fail_before = 16
    path = f"/api/v1/sources/{source_id}/backfill"
    first = (await client.post(path, json={"limit": 100}, headers=accounts.alice.headers)).json()
    failed = await finished(client, accounts.alice, first["id"])
    assert failed["status"] == "failed" and "page 3 failed" in failed["error"]
    assert failed["counters"]["fetched"] == 10

    timeline.fail_before = None
    again = await client.post(path, json={"limit": 100}, headers=accounts.alice.headers)

    assert again.status_code == 202 and again.json()["id"] == first["id"]
    assert again.json()["status"] == "queued" and again.json()["error"] is None
    done = await finished(client, accounts.alice, first["id"])
    assert done["status"] == "succeeded" and done["counters"]["fetched"] == 25
    assert timeline.asked == [None, 21, 16, 16, 11, 6]


async def test_asking_twice_before_the_worker_starts_gives_the_same_job(client, accounts, server):
    source_id = await add_timeline(client, accounts.alice, Timeline(server, count=3))
    path = f"/api/v1/sources/{source_id}/backfill"

    first = await client.post(path, json={"limit": 10}, headers=accounts.alice.headers)
    second = await client.post(path, json={"limit": 20}, headers=accounts.alice.headers)

    assert first.json()["id"] == second.json()["id"]


async def test_an_rss_source_cannot_be_backfilled_409_says_which_kinds_can(
    client, accounts, server
):
    url = server.serve("/news.xml", rss_feed(["one"]))
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": "news", "config": {"url": url}},
        headers=accounts.alice.headers,
    )
    source_id = created.json()["id"]

    answer = await client.post(
        f"/api/v1/sources/{source_id}/backfill", json={"limit": 10}, headers=accounts.alice.headers
    )

    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert "rss sources reach only their latest posts" in detail and "timeline" in detail


async def test_a_paused_source_answers_409_saying_to_resume_it(client, accounts, server):
    source_id = await add_timeline(client, accounts.alice, Timeline(server, count=3))
    await client.patch(
        f"/api/v1/sources/{source_id}", json={"enabled": False}, headers=accounts.alice.headers
    )

    answer = await client.post(
        f"/api/v1/sources/{source_id}/backfill", json={"limit": 10}, headers=accounts.alice.headers
    )

    assert answer.status_code == 409 and "resume it" in answer.json()["detail"]


@pytest.mark.parametrize("body", [{"limit": 0}, {}, {"limit": 10, "surprise": True}])
async def test_a_bad_backfill_request_is_422(client, accounts, server, body):
    source_id = await add_timeline(client, accounts.alice, Timeline(server, count=3))
    answer = await client.post(
        f"/api/v1/sources/{source_id}/backfill", json=body, headers=accounts.alice.headers
    )
    assert answer.status_code == 422


async def test_backfill_of_an_unknown_source_is_404(client, accounts):
    answer = await client.post(
        "/api/v1/sources/999/backfill", json={"limit": 10}, headers=accounts.alice.headers
    )
    assert answer.status_code == 404
