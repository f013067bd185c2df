"""Every operation of the OpenAPI document, fuzzed by schemathesis against a real server.

The app is served by uvicorn on 127.0.0.1 (a thread of its own) over a fresh SQLite database, and
every operation gets a few generated requests, valid and invalid, signed in as an admin. Each
answer must be no 5xx, have a status the document lists for that operation, and match the
document's schema and content type for that status.

Left out: ``GET /api/v1/alerts/stream``, a Server-Sent Events stream that never ends on its own
(tests/live/test_sse.py covers it); the WebSocket ``/api/v1/ws`` is not in the document.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key, load_settings
from sigwatch.db import users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import User

#: The fuzzing admin's id: far from the small ids generated requests pick, so none of them
#: deactivates, demotes or deletes the caller and turns the rest of the run into 401s.
ADMIN_ID = 1_987_654_321
#: Generated requests per operation: a few by default, so the whole run stays near 40 s on two
#: cores; SIGWATCH_TEST_FUZZ_EXAMPLES=200 hunts further (and SIGWATCH_TEST_FUZZ_RANDOM=1 varies it).
EXAMPLES = int(os.environ.get("SIGWATCH_TEST_FUZZ_EXAMPLES", "6"))
DERANDOMIZE = os.environ.get("SIGWATCH_TEST_FUZZ_RANDOM") != "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def prepare_database(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with session_factory(engine).begin() as session:
            admin = await users.create_user(
                session, username="fuzzer", password_hash=auth.hash_password("x" * 16), role="admin"
            )
            await session.execute(update(User).where(User.id == admin.id).values(id=ADMIN_ID))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The app on 127.0.0.1 in a thread of its own; its base URL and the admin's headers."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    settings = load_settings(
        data_dir=data_dir,
        secret_key="fuzz-secret-key-that-is-long-enough-0123456789",
        # Hundreds of requests from one address: the limits have tests of their own.
        rate_limit_enabled=False,
    )
    asyncio.run(prepare_database(settings))
    token = auth.issue_token(
        ensure_secret_key(settings),
        user_id=ADMIN_ID,
        role="admin",
        token_type="access",
        ttl_s=3600,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def published_document() -> dict[str, Any]:
    """The OpenAPI document the app serves at /openapi.json (drawing it touches no database)."""
    app = create_app(load_settings(data_dir=Path(tempfile.gettempdir()) / "sigwatch-openapi"))
    document: dict[str, Any] = app.openapi()
    return document


# Loaded when the module is: schemathesis' lazy loader needs a pytest internal that 9.x dropped.
schema = schemathesis.openapi.from_dict(published_document()).exclude(path="/api/v1/alerts/stream")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, served):
    base_url, headers = served
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)


DOCUMENT = published_document()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def test_every_api_operation_documents_the_errors_its_shape_gives():
    for method, path, operation in OPERATIONS:
        responses = operation["responses"]
        where = f"{method} {path}: {sorted(responses)}"
        if not path.startswith("/api/v1/"):
            assert "429" not in responses, where  # health checks are never rate limited
            continue
        assert "429" in responses, where
        assert "401" in responses, where
        if "{" in path:
            assert {"404", "422"} <= set(responses), where
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), where
        if path.startswith("/api/v1/users"):
            assert "403" in responses, where  # admins only


def test_error_responses_are_in_the_projects_error_shapes():
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["ErrorOut"]["required"] == ["detail"]
    assert schemas["FieldErrorOut"]["required"] == ["loc", "msg", "type"]
    too_large = DOCUMENT["paths"]["/api/v1/entities"]["post"]["responses"]["413"]
    assert too_large["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    conflict = DOCUMENT["paths"]["/api/v1/entities"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


# Found by the fuzzing above: each was a 5xx, or a status or body the document did not list.


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
async def test_an_export_filter_the_database_refuses_is_422_before_the_stream(
    client, accounts, export_format
):
    answer = await client.get(
        "/api/v1/alerts/export",
        params={"q": ":", "format": export_format},
        headers=accounts.admin.headers,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", "q"]
