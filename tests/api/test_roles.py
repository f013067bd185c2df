"""The route × role matrix: every route of the OpenAPI, as nobody, as a user and as an admin.

Which routes are admin-only is a decision per resource, written down here and in docs/api.md:
users and the audit of sign-ins are the admins'; the watchlist (entities), the detection rules
and their YAML document are shared by everyone, so users read them and only admins change them.
Everything else a user may use on their own rows (other users' rows answer 404, tested beside
each resource).
"""

from __future__ import annotations

import re

import pytest

PUBLIC = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    # WebSub hubs carry no credentials: the callback's token and the push's HMAC stand in.
    ("GET", "/websub/{subscription_id}/{token}"),
    ("POST", "/websub/{subscription_id}/{token}"),
}
ADMIN_ONLY = {
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/{user_id}"),
    ("PATCH", "/api/v1/users/{user_id}"),
    ("DELETE", "/api/v1/users/{user_id}"),
    ("POST", "/api/v1/users/{user_id}/unlock"),
    ("POST", "/api/v1/entities"),
    ("PATCH", "/api/v1/entities/{entity_id}"),
    ("DELETE", "/api/v1/entities/{entity_id}"),
    ("PUT", "/api/v1/rules/{event}"),
    ("DELETE", "/api/v1/rules/{event}"),
    ("PUT", "/api/v1/watchlist"),
}
#: Path parameters that are not plain ids.
SAMPLE_VALUES = {"event": "airdrop"}


def routes(app) -> list[tuple[str, str]]:
    """Every (method, path template) the OpenAPI lists."""
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_VALUES.get(m.group(1), "1"), path)


#: Endless streams: the in-process client waits for a body's end, so they are called only
#: without credentials here; tests/live/test_sse.py opens them as each role.
STREAMS = {("GET", "/api/v1/alerts/stream")}


async def call(client, method: str, path: str, headers: dict[str, str]) -> int | None:
    if (method, path) in STREAMS and headers:
        return None
    answer = await client.request(method, concrete(path), headers=headers, json={})
    return int(answer.status_code)


def test_the_matrix_names_only_routes_that_exist(app):
    listed = set(routes(app))
    assert PUBLIC <= listed and ADMIN_ONLY <= listed


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_every_route_answers_each_role_as_the_matrix_says(app, client, accounts):
    refused_to_nobody, refused_to_users, refused_to_admins = set(), set(), set()
    for method, path in routes(app):
        if (method, path) not in PUBLIC and await call(client, method, path, {}) == 401:
            refused_to_nobody.add((method, path))
        if await call(client, method, path, accounts.alice.headers) == 403:
            refused_to_users.add((method, path))
        if await call(client, method, path, accounts.admin.headers) in (401, 403):
            refused_to_admins.add((method, path))
    assert refused_to_nobody == set(routes(app)) - PUBLIC
    assert refused_to_users == ADMIN_ONLY
    assert refused_to_admins == set()
