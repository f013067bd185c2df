"""API keys: shown once, listed by prefix, usable as header or bearer, refused once revoked."""

from __future__ import annotations

from sigwatch.db.audit import list_audit


async def create_key(client, headers, **body):
    response = await client.post("/api/v1/api-keys", json={"name": "ci", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_created_key_is_returned_once_and_listed_by_prefix_only(client, accounts):
    created = await create_key(client, accounts.alice.headers)
    assert created["key"].startswith("sw_") and created["key"].startswith(created["prefix"])
    assert created["user_id"] == accounts.alice.id and created["last_used_at"] is None

    listed = await client.get("/api/v1/api-keys", headers=accounts.alice.headers)
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["prefix"] == created["prefix"] and item["name"] == "ci"
    assert "key" not in item and "key_hash" not in item
    assert created["key"] not in listed.text


async def test_key_authenticates_by_header_or_as_bearer_and_records_its_use(client, accounts):
    created = await create_key(client, accounts.alice.headers)
    by_header = await client.get("/api/v1/auth/me", headers={"X-API-Key": created["key"]})
    assert by_header.status_code == 200
    assert by_header.json()["username"] == "alice" and by_header.json()["auth"] == "api_key"
    as_bearer = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {created['key']}"}
    )
    assert as_bearer.status_code == 200

    url = f"/api/v1/api-keys/{created['id']}"
    first_use = (await client.get(url, headers=accounts.alice.headers)).json()["last_used_at"]
    assert first_use is not None
    # Within the minute a further use writes nothing.
    await client.get("/api/v1/auth/me", headers={"X-API-Key": created["key"]})
    assert (await client.get(url, headers=accounts.alice.headers)).json()[
        "last_used_at"
    ] == first_use


async def test_revoked_key_is_refused_and_stays_listed_as_revoked(client, accounts, sessions):
    created = await create_key(client, accounts.alice.headers)
    revoked = await client.delete(
        f"/api/v1/api-keys/{created['id']}", headers=accounts.alice.headers
    )
    assert revoked.status_code == 204

    refused = await client.get("/api/v1/sources", headers={"X-API-Key": created["key"]})
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    listed = await client.get("/api/v1/api-keys", headers=accounts.alice.headers)
    assert listed.json()["items"][0]["revoked_at"] is not None

    async with sessions() as session:
        actions = [row.action for row in (await list_audit(session, object_type="api_key")).items]
    assert actions == ["revoke", "create"]


async def test_unknown_and_malformed_keys_are_401(client, accounts):
    unknown = await client.get("/api/v1/sources", headers={"X-API-Key": "sw_" + "a" * 43})
    malformed = await client.get("/api/v1/sources", headers={"X-API-Key": "letmein"})
    assert unknown.status_code == 401 and malformed.status_code == 401


async def test_users_see_only_their_own_keys_and_admins_see_all(client, accounts):
    alices = await create_key(client, accounts.alice.headers)
    await create_key(client, accounts.bob.headers)

    bob_list = await client.get("/api/v1/api-keys", headers=accounts.bob.headers)
    assert [item["user_id"] for item in bob_list.json()["items"]] == [accounts.bob.id]
    bob_reads = await client.get(f"/api/v1/api-keys/{alices['id']}", headers=accounts.bob.headers)
    assert bob_reads.status_code == 404
    bob_revokes = await client.delete(
        f"/api/v1/api-keys/{alices['id']}", headers=accounts.bob.headers
    )
    assert bob_revokes.status_code == 404

    admin_list = await client.get("/api/v1/api-keys", headers=accounts.admin.headers)
    assert len(admin_list.json()["items"]) == 2
    only_alice = await client.get(
        "/api/v1/api-keys", params={"user_id": accounts.alice.id}, headers=accounts.admin.headers
    )
    assert [item["id"] for item in only_alice.json()["items"]] == [alices["id"]]


async def test_only_admins_make_keys_for_other_users(client, accounts):
    refused = await client.post(
        "/api/v1/api-keys", json={"user_id": accounts.bob.id}, headers=accounts.alice.headers
    )
    assert refused.status_code == 403
    made = await create_key(client, accounts.admin.headers, user_id=accounts.bob.id)
    assert made["user_id"] == accounts.bob.id
    unknown_user = await client.post(
        "/api/v1/api-keys", json={"user_id": 999}, headers=accounts.admin.headers
    )
    assert unknown_user.status_code == 422
    assert unknown_user.json()["detail"][0]["loc"] == ["body", "user_id"]


async def test_key_of_a_deactivated_user_is_refused(client, accounts):
    created = await create_key(client, accounts.bob.headers)
    await client.delete(f"/api/v1/users/{accounts.bob.id}", headers=accounts.admin.headers)
    refused = await client.get("/api/v1/auth/me", headers={"X-API-Key": created["key"]})
    assert refused.status_code == 401 and "deactivated" in refused.json()["detail"]
