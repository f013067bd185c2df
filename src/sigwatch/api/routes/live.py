"""Live alerts: a WebSocket at /api/v1/ws and a Server-Sent Events stream at /api/v1/alerts/stream.

Both serve the events of :mod:`sigwatch.live.events` through this process's :class:`LiveHub`.
The SSE stream resumes: with ``Last-Event-ID`` it first replays from the database every change
the caller missed, then goes on live, with no gap and no repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.websockets import WebSocketDisconnect, WebSocketState

from sigwatch import auth
from sigwatch.api.alert_schemas import EventType, Urgency
from sigwatch.api.deps import (
    API_KEY_HEADER,
    Principal,
    Runtime,
    RuntimeDep,
    api_key_scheme,
    authenticate,
    bearer_scheme,
)
from sigwatch.api.middleware import MAX_JSON_DEPTH, json_nests_deeper_than
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT64
from sigwatch.db.live_events import MAX_REPLAY_PAGE, replay_alert_event_rows
from sigwatch.errors import AuthError
from sigwatch.live.events import alert_event
from sigwatch.live.hub import Delivery, EventTypeName, LiveClient, LiveFilters, LiveHub, Viewer
from sigwatch.observability.metrics import LIVE_CLIENTS, LIVE_DROPPED

router = APIRouter(prefix=API_PREFIX, tags=["live"])

#: WebSocket close codes: a policy violation (bad credentials), going away (server stopping),
#: try again later (the client fell behind and was dropped).
CLOSE_POLICY_VIOLATION = 1008
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
#: The close reason the receiver gives when the client has gone.
DISCONNECTED = "disconnected"
#: Longest text message a client may send; subscriptions are small.
MAX_CLIENT_MESSAGE_CHARS = 65_536
#: How long closing a dropped client may wait for its socket to take the close frame.
CLOSE_TIMEOUT_S = 5.0
#: Longest WebSocket close reason, in bytes (RFC 6455 leaves 123 after the code).
MAX_CLOSE_REASON_BYTES = 123

log = structlog.get_logger(__name__)


def live_hub(app: Starlette) -> LiveHub:
    """This process's hub, started on first use over the runtime's bus."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        runtime: Runtime = app.state.runtime
        hub = LiveHub(runtime.bus)
        hub.start()
        app.state.live_hub = hub
        # Read at scrape time, so the metrics cost the hub nothing per event.
        started = hub
        LIVE_CLIENTS.set_function(lambda: started.clients)
        LIVE_DROPPED.set_function(lambda: started.dropped)
    return hub


async def close_live_hub(app: Starlette) -> None:
    """Stop the hub, if one was started, asking its clients to disconnect."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        app.state.live_hub = None
        await hub.close()


async def _authenticate(
    runtime: Runtime, headers: Headers, *, token: str | None, api_key: str | None
) -> Principal:
    """The caller, from query parameters or the usual headers, with a session of its own.

    The session is closed before the stream starts, so a long-lived connection never holds a
    database connection.
    """
    scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
    bearer = token or (credentials if scheme.lower() == "bearer" else None)
    async with runtime.sessions() as session:
        return await authenticate(
            runtime, session, bearer=bearer, api_key=api_key or headers.get(API_KEY_HEADER)
        )


async def _keep_signed_in(
    sign_in: Callable[[], Awaitable[Principal]],
    principal: Principal,
    client: LiveClient,
    recheck_s: float,
) -> None:
    """Close ``client`` once its credentials no longer hold: checked every ``recheck_s`` and
    the moment its token expires (a revoked key, a deactivated user, an expired token)."""
    while True:
        wait = recheck_s
        if principal.expires_at is not None:
            # a token is accepted through its expiry second and the clock leeway: check after
            left = (principal.expires_at - datetime.now(UTC)).total_seconds() + auth.LEEWAY_S + 1
            wait = min(wait, max(left, 0.0))
        await asyncio.sleep(wait)
        try:
            principal = await sign_in()
        except AuthError as exc:
            client.signed_out = True
            client.close(f"signed out: {exc}")
            return
        except (OperationalError, InterfaceError):
            log.warning("database unavailable to check a live client's credentials")


def _viewer(principal: Principal) -> Viewer:
    return Viewer(user_id=principal.user.id, is_admin=principal.is_admin)


def _close_reason(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


@router.websocket("/ws")
async def live_socket(
    websocket: WebSocket, token: str | None = None, api_key: str | None = None
) -> None:
    """Alert events over a WebSocket; authenticate with ``?token=``, ``?api_key=`` or headers.

    The server sends ``{"type": "hello"}``, then events and ``{"type": "ping"}`` heartbeats;
    the client may send ``{"type": "subscribe", "filters": {...}}`` at any time.
    """
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        principal = await _authenticate(runtime, websocket.headers, token=token, api_key=api_key)
    except AuthError as exc:
        # Accepted first, so the client reads why: refusing the handshake gives only a 403.
        await _refuse(websocket, CLOSE_POLICY_VIOLATION, str(exc))
        return
    except (OperationalError, InterfaceError):
        log.warning("database unavailable for a live client's sign-in")
        await _refuse(websocket, CLOSE_TRY_AGAIN_LATER, "database unavailable; retry shortly")
        return
    hub = live_hub(websocket.app)
    client = hub.connect(_viewer(principal))
    guard = asyncio.create_task(
        _keep_signed_in(
            lambda: _authenticate(runtime, websocket.headers, token=token, api_key=api_key),
            principal,
            client,
            runtime.settings.live_recheck_s,
        )
    )
    client.say(
        {
            "type": "hello",
            "user": principal.user.username,
            "heartbeat_s": hub.heartbeat_s,
            "filters": client.filters.model_dump(),
        }
    )
    receiver = asyncio.create_task(_receive(websocket, client, hub))
    try:
        await _send(websocket, client, hub)
    finally:
        hub.disconnect(client)
        receiver.cancel()
        guard.cancel()
        await asyncio.gather(receiver, guard, return_exceptions=True)


async def _refuse(websocket: WebSocket, code: int, message: str) -> None:
    await websocket.send_text(json.dumps({"type": "error", "message": message}))
    await websocket.close(code, _close_reason(message))


async def _send(websocket: WebSocket, client: LiveClient, hub: LiveHub) -> None:
    """Write the client's queue to the socket until it closes, with heartbeats when idle."""
    ping = json.dumps({"type": "ping"})
    try:
        while True:
            batch = client.take()
            if client.closed_reason is not None:
                break
            if not batch:
                if not await client.wait(hub.heartbeat_s):
                    await websocket.send_text(ping)
                continue
            for delivery in batch:
                await websocket.send_text(delivery.text)
    except (WebSocketDisconnect, OSError, RuntimeError):
        # The client went away mid-send; nothing more to write.
        return
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    reason = client.closed_reason or ""
    if reason == DISCONNECTED:
        return
    if client.signed_out:
        code = CLOSE_POLICY_VIOLATION
    else:
        code = CLOSE_TRY_AGAIN_LATER if client.too_slow else CLOSE_GOING_AWAY
    # A dropped client may not be reading at all; do not wait on its socket for ever.
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await websocket.close(code, _close_reason(reason))


async def _receive(websocket: WebSocket, client: LiveClient, hub: LiveHub) -> None:
    """Read the client's messages: subscriptions, pings; a bad one gets an error, not a close."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                answer = _error("send text frames holding JSON, not binary ones")
            else:
                answer = _answer(client, text)
            # Answers share the bounded queue: a client that sends and never reads is dropped.
            if not client.say(answer):
                hub.drop(client)
    finally:
        client.close(DISCONNECTED)


def _answer(client: LiveClient, text: str) -> dict[str, Any]:
    if len(text) > MAX_CLIENT_MESSAGE_CHARS:
        return _error(f"message longer than {MAX_CLIENT_MESSAGE_CHARS} characters")
    if json_nests_deeper_than(text.encode(), MAX_JSON_DEPTH):
        # json.loads would recurse per level and overflow the stack, ending the connection.
        return _error(f"message nests deeper than {MAX_JSON_DEPTH} levels: send a flatter one")
    try:
        message = json.loads(text)
    except ValueError:
        return _error('not JSON: send {"type": "subscribe", "filters": {...}}')
    if not isinstance(message, dict):
        return _error("a message is a JSON object with a type")
    kind = message.get("type")
    if kind == "ping":
        return {"type": "pong"}
    if kind != "subscribe":
        return _error(f"unknown message type {kind!r}: use subscribe or ping")
    try:
        filters = LiveFilters.model_validate(message.get("filters") or {})
    except ValidationError as exc:
        return _error(
            "invalid filters",
            [
                {"loc": ["filters", *error["loc"]], "msg": error["msg"]}
                for error in exc.errors(include_url=False)
            ],
        )
    client.set_filters(filters)
    return {"type": "subscribed", "filters": filters.model_dump()}


def _error(message: str, detail: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "error", "message": message}
    if detail is not None:
        error["detail"] = detail
    return error


@router.get(
    "/alerts/stream",
    response_class=EventSourceResponse,
    # It signs the caller in itself (EventSource sends no headers), so its shape shows no 401.
    responses=error_responses(401, 503),
)
async def alert_stream(
    request: Request,
    runtime: RuntimeDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
    api_key_header: Annotated[str | None, Depends(api_key_scheme)],
    token: Annotated[
        str | None, Query(max_length=4096, description="Access token, for EventSource.")
    ] = None,
    api_key: Annotated[
        str | None, Query(max_length=256, description="API key, for EventSource.")
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="Resume after this event id.")
    ] = None,
    last_event_id_header: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_INT64)
    ] = None,
    entity: Annotated[list[str] | None, Query(max_length=500)] = None,
    event: Annotated[list[EventType] | None, Query()] = None,
    urgency: Annotated[list[Urgency] | None, Query()] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    type: Annotated[list[EventTypeName] | None, Query()] = None,
) -> EventSourceResponse:
    """Alert events as Server-Sent Events; the event id is the alert change's id.

    With a ``Last-Event-ID`` header (or ``?last_event_id=``) the stream first replays, from
    the database, every change after that id the caller may see, then continues live.
    """
    credentials = {"token": token or bearer, "api_key": api_key or api_key_header}
    principal = await _authenticate(runtime, request.headers, **credentials)
    filters = LiveFilters(
        entities=entity, events=event, urgency=urgency, min_confidence=min_confidence, types=type
    )
    hub = live_hub(request.app)
    after_id = last_event_id_header if last_event_id_header is not None else last_event_id
    return EventSourceResponse(
        _stream(
            runtime,
            hub,
            principal,
            lambda: _authenticate(runtime, request.headers, **credentials),
            filters,
            after_id,
        ),
        ping=hub.heartbeat_s,
    )


async def _stream(
    runtime: Runtime,
    hub: LiveHub,
    principal: Principal,
    sign_in: Callable[[], Awaitable[Principal]],
    filters: LiveFilters,
    after_id: int | None,
) -> AsyncIterator[bytes]:
    """Replay what the caller missed, then live events, each change once.

    The stream ends when the caller's credentials stop holding; EventSource then reconnects
    and is refused with 401.
    """
    # Subscribed before the replay query, so nothing committed meanwhile is missed; here rather
    # than in the route, so a response never streamed (HEAD) leaves no client behind.
    client = hub.connect(_viewer(principal), filters, resumable=True)
    viewer_id = principal.owner_filter
    guard = asyncio.create_task(
        _keep_signed_in(sign_in, principal, client, runtime.settings.live_recheck_s)
    )
    try:
        # Ids of the replay's last page: a change committed just before the replay query may
        # still be on its way through the bus, and must not be sent twice. Skipped by id, not
        # by "id <= last replayed", since a change with a smaller id may commit after a larger.
        replayed: set[int] = set()
        if after_id is not None:
            async for page in _replay(runtime, client, viewer_id, after_id):
                replayed = {d.id for d in page if d.id is not None} or replayed
                for delivery in page:
                    yield delivery.sse()
        while client.closed_reason is None:
            batch = client.take()
            if not batch:
                await client.wait(hub.heartbeat_s)
                continue
            for delivery in batch:
                if delivery.id is None or delivery.id not in replayed:
                    yield delivery.sse()
    finally:
        hub.disconnect(client)
        guard.cancel()
        await asyncio.gather(guard, return_exceptions=True)


async def _replay(
    runtime: Runtime, client: LiveClient, viewer_id: int | None, after_id: int
) -> AsyncIterator[list[Delivery]]:
    """Pages of every change after ``after_id`` the viewer may see and the client wants."""
    while True:
        async with runtime.sessions() as session:
            rows = await replay_alert_event_rows(
                session, after_id=after_id, viewer_id=viewer_id, limit=MAX_REPLAY_PAGE
            )
        page = []
        for row in rows:
            viewed = client.seen(alert_event(row))
            if viewed is not None:
                text = json.dumps(viewed, separators=(",", ":"))
                page.append(Delivery(row.change.id, text))
        yield page
        if len(rows) < MAX_REPLAY_PAGE or client.closed_reason is not None:
            return
        after_id = rows[-1].change.id
