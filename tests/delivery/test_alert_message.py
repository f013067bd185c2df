"""AlertMessage: the wire-neutral content of a notification and its webhook JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest


def test_to_json_follows_the_standard_webhooks_payload_shape(make_message):
    payload = json.loads(make_message().to_json())

    assert payload["type"] == "alert.created"
    assert payload["timestamp"] == "2026-01-02T03:05:00Z"
    data = payload["data"]
    assert data["alert_id"] == 42
    assert (data["event"], data["entity"], data["urgency"]) == ("tge", "Example Protocol", "high")
    assert data["confidence"] == 0.87
    assert data["evidence"] == [
        {
            "source": "X",
            "url": "https://x.com/example/status/1",
            "author": "@example",
            "published_at": "2026-01-02T03:04:05Z",
            "excerpt": "TGE on March 3rd.",
        }
    ]


@pytest.mark.parametrize(
    ("kind", "event_type"),
    [
        ("new", "alert.created"),
        ("updated", "alert.updated"),
        ("digest", "alert.digest"),
        ("test", "alert.test"),
    ],
)
def test_kind_names_the_event_type(make_message, kind, event_type):
    assert json.loads(make_message(kind=kind).to_json())["type"] == event_type


def test_times_are_given_in_utc(make_message):
    paris = timezone(timedelta(hours=1))
    message = make_message(created_at=datetime(2026, 1, 2, 4, 5, tzinfo=paris))

    assert json.loads(message.to_json())["timestamp"] == "2026-01-02T03:05:00Z"


def test_to_json_is_compact_utf8_text(make_message):
    body = make_message(title="Ünïcode “quotes” 🚀").to_json()

    assert "Ünïcode “quotes” 🚀" in body
    assert ", " not in body and ": " not in body
