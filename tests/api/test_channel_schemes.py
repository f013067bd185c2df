"""Apprise schemes that open their own sockets are refused by the API, and by "send test" too."""

from __future__ import annotations

import socket

import pytest

from sigwatch.db.models import Channel
from sigwatch.delivery.channels.registry import seal_channel_config

REFUSED = (
    "rsyslog://127.0.0.1/local0",
    "syslog://",
    "mqtt://127.0.0.1/sigwatch/alerts",
    "xmpp://user:pass@127.0.0.1/alice@example.com",
    "growl://127.0.0.1",
    "dbus://",
    "windows://",
)


@pytest.mark.parametrize("url", REFUSED)
async def test_creating_an_apprise_channel_with_a_non_http_scheme_is_422_saying_why(
    client, accounts, url
):
    body = {"kind": "apprise", "name": "Logs", "config": {"url": url}}

    response = await client.post("/api/v1/channels", json=body, headers=accounts.alice.headers)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "config"]
    assert "url" in error["msg"] and "is not supported" in error["msg"]
    assert "mailto://" in error["msg"] and "webhook channel" in error["msg"]
    listed = await client.get("/api/v1/channels", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_changing_a_channel_to_a_non_http_scheme_is_422(client, accounts):
    headers = accounts.alice.headers
    body = {"kind": "apprise", "name": "Chat", "config": {"url": "json://notify.example/a"}}
    created = await client.post("/api/v1/channels", json=body, headers=headers)
    assert created.status_code == 201, created.text

    response = await client.patch(
        f"/api/v1/channels/{created.json()['id']}",
        json={"config": {"url": "rsyslog://127.0.0.1"}},
        headers=headers,
    )

    assert response.status_code == 422, response.text
    assert "rsyslog:// is not supported" in response.text


async def test_an_rsyslog_channel_stored_before_is_refused_by_send_test_and_sends_nothing(
    client, accounts, sessions, settings
):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.3)
        port = receiver.getsockname()[1]
        config = {"url": f"rsyslog://127.0.0.1:{port}/local0", "timeout_s": 5.0}
        async with sessions.begin() as session:
            row = Channel(
                owner_id=accounts.alice.id,
                kind="apprise",
                name="Old syslog",
                config=seal_channel_config(
                    "apprise", config, settings.secret_key.get_secret_value()
                ),
                enabled=True,
            )
            session.add(row)
        response = await client.post(
            f"/api/v1/channels/{row.id}/test", headers=accounts.alice.headers
        )

        assert response.status_code == 200, response.text
        result = response.json()
        assert result["ok"] is False
        assert "rsyslog:// is not supported" in result["detail"]
        with pytest.raises(TimeoutError):
            receiver.recvfrom(65536)
