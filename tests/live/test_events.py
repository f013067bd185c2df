"""Alert events from the database: their shape, one query per publish, and the replay query."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sa_event

from live.support import HELIX, NEBULA_A, NEBULA_B
from sigwatch.api.alert_schemas import AlertOut
from sigwatch.db.live_events import replay_alert_event_rows
from sigwatch.live import MemoryBus, load_alert_events, publish_alert_events
from sigwatch.live.events import ALERT_FIELDS


@pytest.fixture
async def story(live):
    """Alice's feed and Bob's report the Nebula mainnet; Bob's also a Helix airdrop."""
    await live.add_source("alice", [NEBULA_A])
    await live.add_source("bob", [HELIX, NEBULA_B])
    await live.collect("alice")
    await live.collect("bob")
    return await live.history_ids()


def test_event_alert_fields_are_those_of_the_alert_api():
    assert set(ALERT_FIELDS) == set(AlertOut.model_fields)


async def test_event_alert_is_what_the_alert_api_returns(live, story):
    events = await load_alert_events(live.runtime.sessions, story)
    for item in events:
        detail = await live.http.get(
            f"/api/v1/alerts/{item['alert']['id']}", headers=live.accounts.admin.headers
        )
        assert item["alert"] == {name: detail.json()[name] for name in AlertOut.model_fields}


async def test_events_carry_the_view_of_each_user_they_reach(live, story):
    events = await load_alert_events(live.runtime.sessions, story)
    assert sorted(e["type"] for e in events) == ["alert.corroborated", "alert.created"] + [
        "alert.created"
    ]
    alice, bob = str(live.accounts.alice.id), str(live.accounts.bob.id)
    created, helix = (e for e in events if e["type"] == "alert.created")
    (corroborated,) = (e for e in events if e["type"] == "alert.corroborated")
    if created["alert"]["entity"] != "Nebula Protocol":
        created, helix = helix, created
    assert list(created["views"]) == [alice] and list(helix["views"]) == [bob]
    # Bob's post corroborates Alice's story: it reaches Bob only, and for him it is new.
    assert list(corroborated["views"]) == [bob]
    assert corroborated["views"][bob]["type"] == "alert.created"
    assert corroborated["alert"]["source_count"] == 2
    assert corroborated["views"][bob]["alert"]["source_count"] == 1
    assert corroborated["views"][bob]["alert"]["first_source_id"] == live.source_ids["bob"]
    assert created["views"][alice]["alert"]["first_source_id"] == live.source_ids["alice"]


async def test_publish_reads_once_and_publishes_in_id_order(live, story):
    bus = MemoryBus()
    heard = bus.subscribe()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = live.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        published = await publish_alert_events(bus, live.runtime.sessions, list(reversed(story)))
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert published == 3
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == statements
    assert len(statements) == 2  # the changes with their alerts, then the users' views
    assert [(await anext(heard))["id"] for _ in story] == story


async def test_publishing_never_fails_the_caller(live, story):
    class BrokenBus(MemoryBus):
        async def publish(self, event):
            raise RuntimeError("bus down")

    assert await publish_alert_events(BrokenBus(), live.runtime.sessions, story) == 0
    assert await publish_alert_events(MemoryBus(), live.runtime.sessions, []) == 0
    assert await publish_alert_events(MemoryBus(), live.runtime.sessions, [10**12]) == 0


async def test_replay_pages_through_what_the_viewer_may_see(live, story):
    async with live.runtime.sessions() as session:
        everything = await replay_alert_event_rows(session, after_id=0, viewer_id=None)
        alices = await replay_alert_event_rows(
            session, after_id=0, viewer_id=live.accounts.alice.id
        )
        first = await replay_alert_event_rows(
            session, after_id=0, viewer_id=live.accounts.bob.id, limit=1
        )
        rest = await replay_alert_event_rows(
            session, after_id=first[0].change.id, viewer_id=live.accounts.bob.id
        )
    assert [row.change.id for row in everything] == story
    assert {row.alert.entity for row in alices} == {"Nebula Protocol"} and len(alices) == 1
    # Bob is told of his own posts' changes only: not of Alice's post that created the story.
    assert [row.change.id for row in first + rest] == story[1:]
