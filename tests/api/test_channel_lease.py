"""A channel whose own send timeout would outlast the workers' lease is refused, field named."""

from __future__ import annotations

import pytest

from sigwatch.config import Settings

APPRISE = {"kind": "apprise", "name": "Chat", "config": {"url": "json://notify.example/alerts"}}


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """A 20 s lease (with a fetch timeout below it), so Apprise's 30 s default is too long."""
    return sqlite_settings.model_copy(update={"lease_s": 20, "fetch_timeout_s": 5.0})


async def test_channel_timeout_not_below_the_lease_is_422_naming_config_timeout_s(client, accounts):
    headers = accounts.alice.headers
    for config in ({"timeout_s": 20}, {}):  # given, or Apprise's default of 30 s
        body = {**APPRISE, "config": {**APPRISE["config"], **config}}
        response = await client.post("/api/v1/channels", json=body, headers=headers)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "config", "timeout_s"]
        assert "SIGWATCH_LEASE_S=20s" in error["msg"]
    listed = await client.get("/api/v1/channels", headers=headers)
    assert listed.json()["items"] == []


async def test_channel_timeout_raised_past_the_lease_is_422_and_changes_nothing(client, accounts):
    headers = accounts.alice.headers
    body = {**APPRISE, "config": {**APPRISE["config"], "timeout_s": 15}}
    created = await client.post("/api/v1/channels", json=body, headers=headers)
    assert created.status_code == 201, created.text
    url = f"/api/v1/channels/{created.json()['id']}"
    changed = await client.patch(
        url, json={"config": {**created.json()["config"], "timeout_s": 25}}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["detail"][0]["loc"] == ["body", "config", "timeout_s"]
    assert (await client.get(url, headers=headers)).json()["config"]["timeout_s"] == 15
