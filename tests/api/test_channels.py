"""Channels: CRUD with secrets sealed at rest and masked on the way out, and "send test"."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from sigwatch.api import create_app
from sigwatch.db.audit import list_audit
from sigwatch.db.models import Channel
from sigwatch.delivery.channels.registry import open_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret, verify_webhook
from sigwatch.manage.channels import shown_config

HOOK_URL = "https://hooks.example/in/t0ken-abc"
WEBHOOK = {"kind": "webhook", "name": "My hook", "config": {"url": HOOK_URL}}
APPRISE_URL = "json://robot:hunter2@notify.example/alerts"


async def create_channel(client, headers, **overrides):
    response = await client.post("/api/v1/channels", json={**WEBHOOK, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def loopback_client(settings, accounts):
    """A client of an app whose outbound client may reach 127.0.0.1, for local receivers."""
    allowed = settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})
    application = create_app(allowed)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_webhook_secret_is_generated_shown_once_and_masked_everywhere_else(
    client, accounts, sessions
):
    headers = accounts.alice.headers
    created = await create_channel(client, headers)
    secret = created["generated_secrets"]["secret"]
    assert secret.startswith("whsec_")
    assert created["config"] == {"url": "https://****", "secret": "****" + secret[-4:]}
    assert created["owner_id"] == accounts.alice.id and created["kind"] == "webhook"

    read = await client.get(f"/api/v1/channels/{created['id']}", headers=headers)
    assert read.status_code == 200
    assert "generated_secrets" not in read.json()
    assert read.json()["config"] == created["config"]
    listed = await client.get("/api/v1/channels", headers=headers)
    assert [item["config"] for item in listed.json()["items"]] == [created["config"]]

    async with sessions() as session:
        stored = (await session.scalars(select(Channel))).one()
        audit = (await list_audit(session, object_type="channel")).items
    assert HOOK_URL not in json.dumps(stored.config) and secret not in json.dumps(stored.config)
    for row in audit:
        written = json.dumps([row.before, row.after])
        assert HOOK_URL not in written and secret not in written and "t0ken" not in written
    assert audit[0].after["config"] == created["config"]


async def test_a_given_webhook_secret_is_kept_and_not_echoed(client, accounts):
    secret = generate_webhook_secret()
    created = await create_channel(
        client, accounts.alice.headers, config={"url": HOOK_URL, "secret": secret}
    )
    assert created["generated_secrets"] == {}
    assert secret not in json.dumps(created)


async def test_apprise_channel_url_is_stored_sealed_and_shown_by_scheme_only(
    client, accounts, sessions
):
    created = await create_channel(
        client, accounts.alice.headers, kind="apprise", name="Chat", config={"url": APPRISE_URL}
    )
    assert created["config"]["url"] == "json://****"
    assert created["generated_secrets"] == {}
    assert "hunter2" not in json.dumps(created)
    async with sessions() as session:
        stored = (await session.scalars(select(Channel))).one()
    assert "hunter2" not in json.dumps(stored.config)


BAD_CHANNELS = {
    "unknown-kind": ({**WEBHOOK, "kind": "carrier-pigeon"}, ["body", "kind"]),
    "missing-url": ({**WEBHOOK, "config": {}}, ["body", "config", "url"]),
    "ftp-url": (
        {**WEBHOOK, "config": {"url": "ftp://hooks.example/in"}},
        ["body", "config", "url"],
    ),
    "url-no-request-can-use": (
        {**WEBHOOK, "config": {"url": "http://0177.0.0.2/in"}},
        ["body", "config", "url"],
    ),
    "bad-secret": (
        {**WEBHOOK, "config": {"url": HOOK_URL, "secret": "not-a-whsec"}},
        ["body", "config", "secret"],
    ),
    "unknown-option": (
        {**WEBHOOK, "config": {"url": HOOK_URL, "x": 1}},
        ["body", "config", "x"],
    ),
    "bad-apprise-url": (
        {"kind": "apprise", "name": "Chat", "config": {"url": "nonsense://what"}},
        ["body", "config", "url"],
    ),
    "rate-limit-zero": ({**WEBHOOK, "rate_limit_per_min": 0}, ["body", "rate_limit_per_min"]),
    "blank-name": ({**WEBHOOK, "name": "  "}, ["body", "name"]),
    "unknown-field": ({**WEBHOOK, "colour": "blue"}, ["body", "colour"]),
    "config-not-an-object": ({**WEBHOOK, "config": [HOOK_URL]}, ["body", "config"]),
}


async def test_bad_channel_input_is_422_naming_the_field_without_echoing_secrets(client, accounts):
    for case, (body, loc) in BAD_CHANNELS.items():
        response = await client.post("/api/v1/channels", json=body, headers=accounts.alice.headers)
        assert response.status_code == 422, (case, response.text)
        locs = [error["loc"] for error in response.json()["detail"]]
        assert loc in locs, (case, locs)
        assert "not-a-whsec" not in response.text and "t0ken" not in response.text, case
    listed = await client.get("/api/v1/channels", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_update_changes_fields_and_null_removes_the_rate_limit(client, accounts):
    headers = accounts.alice.headers
    created = await create_channel(client, headers, rate_limit_per_min=30)
    url = f"/api/v1/channels/{created['id']}"
    patched = await client.patch(url, json={"name": "Renamed", "enabled": False}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Renamed" and patched.json()["enabled"] is False
    assert patched.json()["rate_limit_per_min"] == 30
    unlimited = await client.patch(url, json={"rate_limit_per_min": None}, headers=headers)
    assert unlimited.json()["rate_limit_per_min"] is None
    refused = await client.patch(url, json={"name": None}, headers=headers)
    assert refused.status_code == 422
    kind = await client.patch(url, json={"kind": "apprise"}, headers=headers)
    assert kind.status_code == 422 and kind.json()["detail"][0]["loc"] == ["body", "kind"]
    bad = await client.patch(url, json={"config": {"url": "ftp://x.example"}}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "config"]


async def test_config_update_keeps_secrets_left_out_or_sent_back_masked(
    client, accounts, sessions, settings
):
    headers = accounts.alice.headers
    created = await create_channel(client, headers)
    secret = created["generated_secrets"]["secret"]
    url = f"/api/v1/channels/{created['id']}"

    new_url = "https://other.example/hook"
    moved = await client.patch(url, json={"config": {"url": new_url}}, headers=headers)
    assert moved.status_code == 200, moved.text
    echoed = await client.patch(url, json={"config": moved.json()["config"]}, headers=headers)
    assert echoed.status_code == 200, echoed.text

    async with sessions() as session:
        stored = (await session.scalars(select(Channel))).one()
        audit = (await list_audit(session, object_type="channel")).items
    clear = open_channel_config("webhook", stored.config, settings.secret_key.get_secret_value())
    assert clear == {"url": new_url, "secret": secret}
    assert [row.action for row in audit] == ["update", "update", "create"]
    assert new_url not in json.dumps([row.after for row in audit])


async def test_a_changed_secret_key_shows_secrets_fully_masked(client, accounts, sessions):
    await create_channel(client, accounts.alice.headers)
    async with sessions() as session:
        stored = (await session.scalars(select(Channel))).one()
    assert shown_config(stored, "a-different-secret-key-0123456789abcdef") == {
        "url": "****",
        "secret": "****",
    }


async def test_users_cannot_see_change_delete_or_test_other_users_channels(client, accounts):
    alices = await create_channel(client, accounts.alice.headers)
    url = f"/api/v1/channels/{alices['id']}"
    bob = accounts.bob.headers
    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.patch(url, json={"name": "mine"}, headers=bob)).status_code == 404
    assert (await client.post(f"{url}/test", headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert (await client.get("/api/v1/channels", headers=bob)).json()["items"] == []
    assert (await client.get("/api/v1/channels/999999", headers=bob)).status_code == 404

    admin = accounts.admin.headers
    assert (await client.get(url, headers=admin)).status_code == 200
    admin_list = await client.get("/api/v1/channels", headers=admin)
    assert [item["id"] for item in admin_list.json()["items"]] == [alices["id"]]
    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=accounts.alice.headers)).status_code == 404


async def test_channel_list_pages_and_filters(client, accounts):
    headers = accounts.alice.headers
    for n in range(3):
        await create_channel(client, headers, name=f"hook {n}", enabled=n != 1)
    first = await client.get("/api/v1/channels?limit=2", headers=headers)
    assert [c["name"] for c in first.json()["items"]] == ["hook 0", "hook 1"]
    second = await client.get(
        "/api/v1/channels",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    assert [c["name"] for c in second.json()["items"]] == ["hook 2"]
    assert second.json()["next_cursor"] is None
    disabled = await client.get("/api/v1/channels?enabled=false", headers=headers)
    assert [c["name"] for c in disabled.json()["items"]] == ["hook 1"]
    apprise = await client.get("/api/v1/channels?kind=apprise", headers=headers)
    assert apprise.json()["items"] == []
    bad_cursor = await client.get("/api/v1/channels?cursor=nonsense", headers=headers)
    assert bad_cursor.status_code == 422


async def test_channel_delete_is_audited(client, accounts, sessions):
    created = await create_channel(client, accounts.alice.headers)
    url = f"/api/v1/channels/{created['id']}"
    assert (await client.delete(url, headers=accounts.alice.headers)).status_code == 204
    assert (await client.get(url, headers=accounts.alice.headers)).status_code == 404
    async with sessions() as session:
        rows = (await list_audit(session, object_type="channel")).items
    assert [row.action for row in rows] == ["delete", "create"]
    assert rows[0].before["config"] == created["config"] and rows[0].after is None


# --- send test -----------------------------------------------------------------------------------


async def test_send_test_posts_a_signed_test_message_to_a_local_receiver(
    loopback_client, accounts, server, sessions
):
    headers = accounts.alice.headers
    hook = server.serve("/hook", b"thanks")
    created = await create_channel(loopback_client, headers, config={"url": hook})
    secret = created["generated_secrets"]["secret"]

    response = await loopback_client.post(f"/api/v1/channels/{created['id']}/test", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True and response.json()["status_code"] == 200
    assert "HTTP 200" in response.json()["detail"]
    (request,) = server.requests
    assert request.method == "POST" and request.path == "/hook"
    assert verify_webhook(secret, request.headers, request.body)
    payload = json.loads(request.body)
    assert payload["type"] == "alert.test" and payload["data"]["kind"] == "test"
    async with sessions() as session:
        audit = (await list_audit(session, object_type="channel")).items[0]
    assert audit.action == "test" and audit.after["ok"] is True


async def test_send_test_reports_a_refusal_as_not_ok_with_the_reason(
    loopback_client, accounts, server
):
    hook = server.serve("/hook", b'{"message": "bad token"}', status=401)
    created = await create_channel(loopback_client, accounts.alice.headers, config={"url": hook})
    response = await loopback_client.post(
        f"/api/v1/channels/{created['id']}/test", headers=accounts.alice.headers
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is False and result["status_code"] is None
    assert "401" in result["detail"] and "bad token" in result["detail"]


async def test_send_test_to_a_receiver_that_is_down_is_not_ok(
    loopback_client, accounts, closed_port
):
    created = await create_channel(
        loopback_client,
        accounts.alice.headers,
        config={"url": f"http://127.0.0.1:{closed_port}/hook"},
    )
    response = await loopback_client.post(
        f"/api/v1/channels/{created['id']}/test", headers=accounts.alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is False
    assert "could not connect" in response.json()["detail"]


async def test_send_test_to_a_private_address_is_refused_by_default(client, accounts, server):
    hook = server.serve("/hook", b"thanks")
    created = await create_channel(client, accounts.alice.headers, config={"url": hook})
    response = await client.post(
        f"/api/v1/channels/{created['id']}/test", headers=accounts.alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is False and "refused" in response.json()["detail"]
    assert server.connections == 0


async def test_send_test_through_apprise_reaches_a_local_receiver(
    loopback_client, accounts, server
):
    server.serve("/notify", b"{}", headers={"Content-Type": "application/json"})
    created = await create_channel(
        loopback_client,
        accounts.alice.headers,
        kind="apprise",
        name="Generic JSON",
        config={"url": f"json://127.0.0.1:{server.port}/notify"},
    )
    response = await loopback_client.post(
        f"/api/v1/channels/{created['id']}/test", headers=accounts.alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True, response.json()
    (request,) = server.requests
    assert request.method == "POST" and b"sigwatch test notification" in request.body
