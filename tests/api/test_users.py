"""User management: admins only; every change audited; the last admin cannot be removed."""

from __future__ import annotations

from sigwatch.db.audit import list_audit


async def test_admin_creates_a_user_who_can_then_sign_in(client, accounts, sessions):
    created = await client.post(
        "/api/v1/users",
        json={"username": "carol", "password": "a long enough password", "role": "user"},
        headers=accounts.admin.headers,
    )
    assert created.status_code == 201
    assert created.json()["username"] == "carol" and "password" not in created.text
    login = await client.post(
        "/api/v1/auth/token", data={"username": "carol", "password": "a long enough password"}
    )
    assert login.status_code == 200

    async with sessions() as session:
        (row,) = (await list_audit(session, object_type="user")).items
    assert (row.action, row.actor, row.before) == ("create", "admin", None)
    assert row.after["username"] == "carol" and "password_hash" not in row.after


async def test_ordinary_users_cannot_manage_users(client, accounts):
    headers = accounts.alice.headers
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
    assert (
        await client.get(f"/api/v1/users/{accounts.bob.id}", headers=headers)
    ).status_code == 403
    create = await client.post(
        "/api/v1/users", json={"username": "eve", "password": "password123"}, headers=headers
    )
    assert create.status_code == 403
    promote = await client.patch(
        f"/api/v1/users/{accounts.alice.id}", json={"role": "admin"}, headers=headers
    )
    assert promote.status_code == 403


async def test_list_users_pages_with_a_cursor(client, accounts):
    first = await client.get("/api/v1/users?limit=2", headers=accounts.admin.headers)
    assert [u["username"] for u in first.json()["items"]] == ["admin", "alice"]
    cursor = first.json()["next_cursor"]
    second = await client.get(
        "/api/v1/users", params={"limit": 2, "cursor": cursor}, headers=accounts.admin.headers
    )
    assert [u["username"] for u in second.json()["items"]] == ["bob"]
    assert second.json()["next_cursor"] is None


async def test_duplicate_username_is_a_conflict(client, accounts):
    response = await client.post(
        "/api/v1/users",
        json={"username": "Alice", "password": "password123"},
        headers=accounts.admin.headers,
    )
    assert response.status_code == 409


async def test_bad_user_fields_are_422_naming_the_field(client, accounts):
    short = await client.post(
        "/api/v1/users",
        json={"username": "dave", "password": "short"},
        headers=accounts.admin.headers,
    )
    assert short.json()["detail"][0]["loc"] == ["body", "password"]
    role = await client.patch(
        f"/api/v1/users/{accounts.bob.id}", json={"role": "root"}, headers=accounts.admin.headers
    )
    assert role.status_code == 422 and role.json()["detail"][0]["loc"] == ["body", "role"]
    null = await client.patch(
        f"/api/v1/users/{accounts.bob.id}", json={"is_active": None}, headers=accounts.admin.headers
    )
    assert null.status_code == 422 and null.json()["detail"][0]["loc"] == ["body", "is_active"]


async def test_admin_changes_role_and_the_change_is_audited(client, accounts, sessions):
    response = await client.patch(
        f"/api/v1/users/{accounts.bob.id}", json={"role": "admin"}, headers=accounts.admin.headers
    )
    assert response.status_code == 200 and response.json()["role"] == "admin"
    async with sessions() as session:
        (row,) = (await list_audit(session, object_type="user")).items
    assert row.action == "update" and row.object_id == str(accounts.bob.id)
    assert (row.before["role"], row.after["role"]) == ("user", "admin")


async def test_last_active_admin_cannot_be_demoted_or_deactivated(client, accounts):
    url = f"/api/v1/users/{accounts.admin.id}"
    demote = await client.patch(url, json={"role": "user"}, headers=accounts.admin.headers)
    assert demote.status_code == 409 and "last active admin" in demote.json()["detail"]
    deactivate = await client.delete(url, headers=accounts.admin.headers)
    assert deactivate.status_code == 409


async def test_unknown_user_id_is_404_and_out_of_range_is_422(client, accounts):
    assert (
        await client.get("/api/v1/users/4242", headers=accounts.admin.headers)
    ).status_code == 404
    huge = await client.get(f"/api/v1/users/{2**70}", headers=accounts.admin.headers)
    assert huge.status_code == 422
