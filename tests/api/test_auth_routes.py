"""Signing in: tokens from a password, refresh, expiry, and what an unauthenticated call gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sigwatch import auth
from sigwatch.config import ensure_secret_key

from .conftest import PASSWORD


async def test_token_login_with_the_oauth2_password_form(client, accounts):
    response = await client.post(
        "/api/v1/auth/token",
        data={"username": "alice", "password": PASSWORD, "grant_type": "password"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["username"] == "alice" and me.json()["auth"] == "token"


async def test_token_login_with_a_json_body(client, accounts):
    response = await client.post(
        "/api/v1/auth/token", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert {"access_token", "refresh_token"} <= set(response.json())


async def test_wrong_password_and_unknown_user_get_the_same_401(client, accounts):
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": "mallory", "password": PASSWORD}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {"detail": "incorrect username or password"}


async def test_token_request_without_password_names_the_field(client, accounts):
    response = await client.post("/api/v1/auth/token", json={"username": "alice"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
    nul = await client.post("/api/v1/auth/token", json={"username": "a\x00b", "password": "p"})
    assert nul.status_code == 422 and nul.json()["detail"][0]["loc"] == ["body", "username"]
    bad_json = await client.post(
        "/api/v1/auth/token", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422


async def test_deactivated_user_cannot_sign_in_or_use_an_old_token(client, accounts):
    old_token = accounts.bob.headers
    deactivated = await client.delete(
        f"/api/v1/users/{accounts.bob.id}", headers=accounts.admin.headers
    )
    assert deactivated.status_code == 204
    login = await client.post("/api/v1/auth/token", data={"username": "bob", "password": PASSWORD})
    assert login.status_code == 401 and "deactivated" in login.json()["detail"]
    assert (await client.get("/api/v1/auth/me", headers=old_token)).status_code == 401


async def test_refresh_token_gives_a_new_pair_and_is_not_an_access_token(
    client, accounts, settings
):
    pair = auth.issue_token_pair(
        ensure_secret_key(settings),
        user_id=accounts.alice.id,
        role="user",
        access_ttl_s=60,
        refresh_ttl_s=600,
    )
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token}
    )
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access_token"]
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new_access}"})
    assert me.json()["id"] == accounts.alice.id

    as_access = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair.refresh_token}"}
    )
    assert as_access.status_code == 401
    access_as_refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.access_token}
    )
    assert access_as_refresh.status_code == 401


async def test_expired_access_token_is_refused_with_how_to_renew(client, accounts, settings):
    token = auth.issue_token(
        ensure_secret_key(settings),
        user_id=accounts.alice.id,
        role="user",
        token_type="access",
        ttl_s=60,
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    response = await client.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "expired" in response.json()["detail"] and "/auth/refresh" in response.json()["detail"]


async def test_missing_credentials_get_401_saying_how_to_authenticate(client, accounts):
    response = await client.get("/api/v1/entities")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    detail = response.json()["detail"]
    assert "Authorization: Bearer" in detail and "X-API-Key" in detail


async def test_garbage_bearer_token_is_a_401(client, accounts):
    response = await client.get("/api/v1/entities", headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401


async def test_docs_and_openapi_need_no_credentials(client, accounts):
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/sources/{source_id}" in schema.json()["paths"]
    assert (await client.get("/docs")).status_code == 200
