"""The hub's fan-out: one serialisation per event, visibility, filters, slow clients dropped."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from live.support import WAIT_S
from sigwatch.live.bus import GAP, MemoryBus
from sigwatch.live.hub import MAY_HAVE_MISSED, SHUTTING_DOWN, LiveFilters, LiveHub, Viewer

ADMIN = Viewer(user_id=1, is_admin=True)
ALICE = Viewer(user_id=2, is_admin=False)
BOB = Viewer(user_id=3, is_admin=False)


def event(n: int, **alert: object) -> dict[str, object]:
    """An event as publish_alert_events makes them; ``alert`` overrides alert fields.

    ``owners`` lists the users the change reaches; each gets a view whose title names them.
    """
    owners = alert.pop("owners", [ALICE.user_id])
    kind = alert.pop("type", "alert.created")
    whole = {
        "id": 10 + n,
        "entity": "Nebula Protocol",
        "event": "mainnet",
        "confidence": 0.8,
        "urgency": "high",
        "title": f"title {n}",
        **alert,
    }
    return {
        "id": n,
        "type": kind,
        "at": "2026-02-01T09:00:00Z",
        "alert": whole,
        "views": {
            str(owner): {"type": kind, "alert": {**whole, "title": f"title {n} for {owner}"}}
            for owner in owners  # type: ignore[attr-defined]
        },
    }


def test_each_event_is_serialised_once_whatever_the_number_of_clients():
    hub = LiveHub(MemoryBus())
    clients = [hub.connect(ADMIN) for _ in range(50)]
    assert hub.dispatch(event(1)) == 50
    deliveries = [client.take()[0] for client in clients]
    assert all(d is deliveries[0] for d in deliveries)
    assert '"views"' not in deliveries[0].text
    assert deliveries[0].sse() is deliveries[0].sse()
    assert deliveries[0].sse().startswith(b"id: 1\r\ndata: {")


def test_users_get_only_events_of_alerts_from_their_sources():
    hub = LiveHub(MemoryBus())
    admin, alice, bob = hub.connect(ADMIN), hub.connect(ALICE), hub.connect(BOB)
    hub.dispatch(event(1, owners=[ALICE.user_id]))
    hub.dispatch(event(2, owners=[ALICE.user_id, BOB.user_id]))
    hub.dispatch(event(3, owners=[]))  # a source without owner: admins only
    assert [d.id for d in admin.take()] == [1, 2, 3]
    assert [d.id for d in alice.take()] == [1, 2]
    assert [d.id for d in bob.take()] == [2]


def test_each_user_is_sent_their_own_view_serialised_once():
    hub = LiveHub(MemoryBus())
    admin = hub.connect(ADMIN)
    alices = [hub.connect(ALICE) for _ in range(3)]
    bob = hub.connect(BOB)
    hub.dispatch(event(1, owners=[ALICE.user_id, BOB.user_id]))
    sent = [client.take()[0] for client in alices]
    assert all(d is sent[0] for d in sent)
    assert json.loads(sent[0].text)["alert"]["title"] == f"title 1 for {ALICE.user_id}"
    assert json.loads(bob.take()[0].text)["alert"]["title"] == f"title 1 for {BOB.user_id}"
    assert json.loads(admin.take()[0].text)["alert"]["title"] == "title 1"
    assert all('"views"' not in d.text for d in sent)


@pytest.mark.parametrize(
    ("filters", "wanted"),
    [
        ({}, [1, 2, 3, 4]),
        ({"entities": ["helix NETWORK"]}, [2]),
        ({"events": "airdrop"}, [2]),
        ({"types": ["alert.status"]}, [3]),
        ({"min_confidence": 0.9}, [4]),
        ({"urgency": ["low", "medium"]}, [3]),
        ({"events": ["mainnet"], "min_confidence": 0.5}, [1, 3, 4]),
    ],
)
def test_filters_apply_at_fan_out(filters, wanted):
    hub = LiveHub(MemoryBus())
    client = hub.connect(ADMIN, LiveFilters.model_validate(filters))
    hub.dispatch(event(1))
    hub.dispatch(event(2, entity="Helix Network", event="airdrop"))
    hub.dispatch(event(3, type="alert.status", urgency="medium", confidence=0.6))
    hub.dispatch(event(4, confidence=0.95, urgency="critical"))
    assert [d.id for d in client.take()] == wanted


@pytest.mark.parametrize(
    "filters",
    [{"events": ["weather"]}, {"urgency": "soon"}, {"min_confidence": -1}, {"colour": "red"}],
)
def test_bad_filters_are_refused(filters):
    with pytest.raises(ValidationError):
        LiveFilters.model_validate(filters)


def test_a_full_queue_drops_that_client_and_no_other():
    hub = LiveHub(MemoryBus(), max_queue=3)
    slow, fast = hub.connect(ADMIN), hub.connect(ADMIN)
    received = []
    for n in range(1, 6):
        hub.dispatch(event(n))
        received += [d.id for d in fast.take()]
    assert received == [1, 2, 3, 4, 5]
    assert slow.too_slow and "too slow" in (slow.closed_reason or "")
    assert hub.clients == 1 and hub.dropped == 1
    assert slow.queued == 3  # nothing more was queued for it once full


def test_after_a_bus_gap_sse_clients_are_closed_to_resume_and_others_are_told():
    hub = LiveHub(MemoryBus())
    sse, socket = hub.connect(ALICE, resumable=True), hub.connect(ALICE)
    assert hub.dispatch({"type": GAP}) == 0
    assert sse.closed_reason == MAY_HAVE_MISSED and not sse.too_slow
    assert [d.text for d in socket.take()] == [
        '{"type":"gap","message":"the live bus reconnected and events may have been missed: '
        'GET /api/v1/alerts for the current state"}'
    ]
    assert hub.clients == 1 and socket.closed_reason is None


def test_malformed_events_are_skipped():
    hub = LiveHub(MemoryBus())
    client = hub.connect(ADMIN)
    assert hub.dispatch({"id": "x"}) == 0
    assert hub.dispatch({"id": 1, "type": "alert.created", "alert": None}) == 0
    assert client.take() == type(client.take())()


async def test_the_hub_fans_out_what_the_bus_carries_and_closes_clients_with_it():
    bus = MemoryBus()
    hub = LiveHub(bus)
    hub.start()
    client = hub.connect(ALICE)
    await bus.publish(event(1))
    async with asyncio.timeout(WAIT_S):
        assert await client.wait(WAIT_S)
    assert [d.id for d in client.take()] == [1]
    await bus.close()
    async with asyncio.timeout(WAIT_S):
        while client.closed_reason is None:
            await asyncio.sleep(0.01)
    assert client.closed_reason == SHUTTING_DOWN and hub.clients == 0
    await hub.close()


async def test_wait_times_out_when_idle():
    client = LiveHub(MemoryBus()).connect(ADMIN)
    assert await client.wait(0.05) is False
