"""System alert events on the live stream: to admins and the source's owner only, without an id."""

from __future__ import annotations

import asyncio
import json

from sigwatch.api.alert_schemas import SystemAlertOut
from sigwatch.live.bus import MemoryBus
from sigwatch.live.events import event_for, system_alert_event
from sigwatch.live.hub import LiveFilters, LiveHub, Viewer
from sigwatch.worker.freshness import SYSTEM_ALERT_FIELDS

ADMIN = Viewer(user_id=1, is_admin=True)
ALICE = Viewer(user_id=2, is_admin=False)
BOB = Viewer(user_id=3, is_admin=False)


def alarm(owner_id: int | None = ALICE.user_id) -> dict[str, object]:
    return system_alert_event(
        {"id": 5, "source_id": 9, "condition": "failing", "state": "open", "reason": "HTTP 500"},
        owner_id=owner_id,
        at="2026-12-04T12:00:00Z",
    )


def test_the_owner_and_admins_get_a_system_alert_and_others_do_not():
    event = alarm()
    assert event_for(event, ALICE.user_id) == {
        "type": "system_alert",
        "at": "2026-12-04T12:00:00Z",
        "system_alert": event["system_alert"],
    }
    assert event_for(event, None) == event_for(event, ALICE.user_id)
    assert event_for(event, BOB.user_id) is None
    # A shared source's alarm reaches admins only.
    assert event_for(alarm(owner_id=None), ALICE.user_id) is None
    assert event_for(alarm(owner_id=None), None) is not None


def test_the_hub_sends_a_system_alert_without_an_event_id_to_those_who_may_see_it():
    hub = LiveHub(MemoryBus())
    admin, alice, bob = hub.connect(ADMIN), hub.connect(ALICE), hub.connect(BOB)
    assert hub.dispatch(alarm()) == 2
    (sent,) = alice.take()
    assert sent.id is None and sent.sse().startswith(b"data: {")  # Last-Event-ID stays put
    assert json.loads(sent.text)["system_alert"]["condition"] == "failing"
    assert '"owner"' not in sent.text
    assert len(admin.take()) == 1 and len(bob.take()) == 0


def test_only_the_types_filter_applies_to_system_alerts():
    hub = LiveHub(MemoryBus())
    by_entity = hub.connect(ALICE, LiveFilters(entities=["Nebula"], min_confidence=0.9))
    alerts_only = hub.connect(ALICE, LiveFilters(types=["alert.created"]))
    asked = hub.connect(ALICE, LiveFilters(types=["system_alert"]))
    hub.dispatch(alarm())
    assert [len(c.take()) for c in (by_entity, alerts_only, asked)] == [1, 0, 1]


async def test_events_published_on_the_bus_reach_the_hub():
    bus = MemoryBus()
    hub = LiveHub(bus)
    hub.start()
    client = hub.connect(ALICE)
    await asyncio.sleep(0)
    await bus.publish(alarm())
    async with asyncio.timeout(5):
        while not client.queued:
            await asyncio.sleep(0.01)
    await hub.close()


def test_a_system_alert_event_carries_the_fields_of_the_api():
    assert {*SYSTEM_ALERT_FIELDS, "source_name"} == set(SystemAlertOut.model_fields)
