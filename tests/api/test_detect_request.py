"""POST /detect's request: every field documented, and ``published`` does what its text says."""

from __future__ import annotations

import pytest

TGE = "Helix Network token generation event goes live tomorrow at 14:00 UTC"


@pytest.fixture
async def helix(client, accounts) -> None:
    """Helix Network on the watchlist."""
    created = await client.post(
        "/api/v1/entities",
        json={"name": "Helix Network", "aliases": ["Helix"], "symbols": ["HLX"]},
        headers=accounts.admin.headers,
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_every_detect_request_field_is_described_in_the_openapi(client, accounts):
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["DetectRequest"]
    undocumented = [
        name for name, field in schema["properties"].items() if not field.get("description")
    ]
    assert undocumented == []
    assert "event_time" in schema["properties"]["published"]["description"]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_published_resolves_a_relative_time_into_event_time(client, accounts, helix):
    answer = await client.post(
        "/api/v1/detect",
        json={"text": TGE, "published": "2026-03-02T09:00:00"},
        headers=accounts.alice.headers,
    )
    assert answer.status_code == 200, answer.text
    [detection] = answer.json()["detections"]
    assert detection["event"] == "tge"
    # "tomorrow at 14:00 UTC" from a post of 2 March 09:00 (no zone given: UTC).
    assert detection["event_time"] == "2026-03-03T14:00:00Z", detection


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_without_published_a_relative_time_stays_unresolved(client, accounts, helix):
    answer = await client.post("/api/v1/detect", json={"text": TGE}, headers=accounts.alice.headers)
    assert answer.status_code == 200, answer.text
    [detection] = answer.json()["detections"]
    assert detection["event_time"] is None
    assert detection["urgency"] == "critical"  # "goes live" wording, no later time known
