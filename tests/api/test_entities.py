"""The watchlist: shared by everyone, changed by admins only, names unique, every change audited."""

from __future__ import annotations

from sigwatch.db.audit import list_audit

ENTITY = {
    "name": "Example Protocol",
    "aliases": ["ExampleFi", " examplefi ", ""],
    "symbols": ["EXM"],
    "handles": ["@example"],
    "domains": ["example.org"],
    "tags": ["defi"],
    "priority": 5,
}


async def test_entity_crud_by_an_admin_is_audited_and_visible_to_everyone(
    client, accounts, sessions
):
    admin = accounts.admin.headers
    created = await client.post("/api/v1/entities", json=ENTITY, headers=admin)
    assert created.status_code == 201
    entity = created.json()
    # Blanks and repeats (compared without case) are dropped, order kept.
    assert entity["aliases"] == ["ExampleFi"] and entity["priority"] == 5

    url = f"/api/v1/entities/{entity['id']}"
    assert (await client.get(url, headers=accounts.bob.headers)).json()["name"] == ENTITY["name"]
    listed = await client.get("/api/v1/entities", headers=accounts.bob.headers)
    assert [e["id"] for e in listed.json()["items"]] == [entity["id"]]

    patched = await client.patch(
        url, json={"symbols": ["EXM", "XMP"], "priority": 9}, headers=admin
    )
    assert patched.status_code == 200
    assert patched.json()["symbols"] == ["EXM", "XMP"] and patched.json()["tags"] == ["defi"]

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=accounts.alice.headers)).status_code == 404

    async with sessions() as session:
        rows = (await list_audit(session, object_type="entity")).items
    assert [(row.action, row.actor) for row in rows] == [
        ("delete", "admin"),
        ("update", "admin"),
        ("create", "admin"),
    ]
    assert rows[1].before["priority"] == 5 and rows[1].after["priority"] == 9


async def test_users_read_the_watchlist_but_cannot_change_it_for_everyone(client, accounts):
    made = await client.post("/api/v1/entities", json=ENTITY, headers=accounts.admin.headers)
    url = f"/api/v1/entities/{made.json()['id']}"
    alice = accounts.alice.headers
    refused = [
        await client.post("/api/v1/entities", json={"name": "Mine"}, headers=alice),
        await client.patch(url, json={"priority": 1}, headers=alice),
        await client.delete(url, headers=alice),
    ]
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    assert "admin" in refused[0].json()["detail"]
    assert (await client.get(url, headers=alice)).json()["priority"] == 5


async def test_duplicate_entity_name_is_409_on_create_and_rename(client, accounts):
    headers = accounts.admin.headers
    assert (await client.post("/api/v1/entities", json=ENTITY, headers=headers)).status_code == 201
    again = await client.post(
        "/api/v1/entities", json={"name": "example protocol"}, headers=headers
    )
    assert again.status_code == 409 and "exists already" in again.json()["detail"]

    other = (await client.post("/api/v1/entities", json={"name": "Other"}, headers=headers)).json()
    rename = await client.patch(
        f"/api/v1/entities/{other['id']}", json={"name": ENTITY["name"]}, headers=headers
    )
    assert rename.status_code == 409


BAD_ENTITIES = {
    "missing-name": ({"aliases": ["x"]}, ["body", "name"]),
    "list-not-a-list": ({"name": "X", "aliases": "not-a-list"}, ["body", "aliases"]),
    "item-not-a-string": ({"name": "X", "symbols": [1]}, ["body", "symbols", 0]),
    "priority-type": ({"name": "X", "priority": "high"}, ["body", "priority"]),
    "priority-huge": ({"name": "X", "priority": 2**40}, ["body", "priority"]),
    "item-too-long": ({"name": "X", "tags": ["a" * 201]}, ["body", "tags", 0]),
}


async def test_bad_entity_input_is_422_naming_the_field(client, accounts):
    for case, (body, loc) in BAD_ENTITIES.items():
        response = await client.post("/api/v1/entities", json=body, headers=accounts.admin.headers)
        assert response.status_code == 422, (case, response.text)
        assert loc in [error["loc"] for error in response.json()["detail"]], case


async def test_entity_list_searches_names_and_pages(client, accounts):
    for name in ("Alpha", "Beta", "Alphabet"):
        await client.post("/api/v1/entities", json={"name": name}, headers=accounts.admin.headers)
    found = await client.get("/api/v1/entities?q=alpha", headers=accounts.alice.headers)
    assert [e["name"] for e in found.json()["items"]] == ["Alpha", "Alphabet"]
    first = await client.get("/api/v1/entities?limit=1", headers=accounts.alice.headers)
    rest = await client.get(
        "/api/v1/entities",
        params={"cursor": first.json()["next_cursor"]},
        headers=accounts.alice.headers,
    )
    assert [e["name"] for e in rest.json()["items"]] == ["Beta", "Alphabet"]


async def test_unknown_entity_is_404(client, accounts):
    headers = accounts.admin.headers
    assert (await client.get("/api/v1/entities/999", headers=headers)).status_code == 404
    assert (await client.patch("/api/v1/entities/999", json={}, headers=headers)).status_code == 404
    assert (await client.delete("/api/v1/entities/999", headers=headers)).status_code == 404
