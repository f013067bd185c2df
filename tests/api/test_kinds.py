"""GET /source-kinds and /channel-kinds: each kind's name, description and options schema."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    ("path", "kinds", "secrets"),
    [
        (
            "/api/v1/source-kinds",
            ["discord", "json", "reddit", "rss", "telegram", "web", "x_search", "x_user"],
            {
                "discord": ["bot_token"],
                "json": ["headers"],
                "reddit": ["client_id", "client_secret"],
                "rss": ["authorization"],
                "telegram": [],
                "web": [],
                "x_search": ["bearer_token"],
                "x_user": ["bearer_token"],
            },
        ),
        (
            "/api/v1/channel-kinds",
            ["apprise", "webhook"],
            {"apprise": ["url"], "webhook": ["url", "secret"]},
        ),
    ],
)
async def test_kinds_list_their_options_with_the_secrets_write_only(
    client, accounts, path, kinds, secrets
):
    response = await client.get(path, headers=accounts.bob.headers)

    assert response.status_code == 200
    listed = response.json()
    assert [kind["name"] for kind in listed] == kinds
    for kind in listed:
        assert kind["description"]
        assert kind["secret_fields"] == secrets[kind["name"]]
        properties = kind["options_schema"]["properties"]
        for name in kind["secret_fields"]:
            # The mark sits on the secret itself: the option, or its values (a dict of headers).
            schema = json.dumps(properties[name])
            assert '"writeOnly": true' in schema and '"format": "password"' in schema, name


async def test_rss_options_schema_names_the_feed_url_as_required(client, accounts):
    listed = (await client.get("/api/v1/source-kinds", headers=accounts.alice.headers)).json()
    (rss,) = [kind for kind in listed if kind["name"] == "rss"]

    assert rss["options_schema"]["required"] == ["url"]
    assert set(rss["options_schema"]["properties"]) == {"url", "authorization"}


@pytest.mark.parametrize("path", ["/api/v1/source-kinds", "/api/v1/channel-kinds"])
async def test_kinds_need_a_signed_in_caller(client, path):
    assert (await client.get(path)).status_code == 401


async def test_the_openapi_document_carries_each_kinds_options(client):
    document = (await client.get("/openapi.json")).json()

    for path, name in (("/api/v1/source-kinds", "rss"), ("/api/v1/channel-kinds", "webhook")):
        answer = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert name in [kind["name"] for kind in answer["example"]]
        assert answer["schema"]["items"]["$ref"].endswith("/KindOut")
