"""GET /source-kinds and /channel-kinds: each kind's name, description and options schema."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "kinds", "secrets"),
    [
        ("/api/v1/source-kinds", ["rss"], {"rss": ["authorization"]}),
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
            marked = properties[name].get("anyOf", [properties[name]])[0]
            assert marked["writeOnly"] is True and marked["format"] == "password"


async def test_rss_options_schema_names_the_feed_url_as_required(client, accounts):
    (rss,) = (await client.get("/api/v1/source-kinds", headers=accounts.alice.headers)).json()

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
