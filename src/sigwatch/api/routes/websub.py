"""The WebSub callback: hubs verify subscriptions here and push new feed entries.

``/websub/{subscription_id}/{token}`` lies outside the authenticated API: hubs carry no
credentials. The unguessable token in the path (the callback sigwatch gave the hub) and, for
pushes, the HMAC signature of the body (``X-Hub-Signature``, under the secret sigwatch gave
the hub) are the authentication. A push is ingested at once through the poll's own path
(:func:`sigwatch.worker.collect.store_and_detect`: store, detect, route to the outbox, in one
transaction), then its alert events go on the live bus, which also wakes the workers' outbox.
See :mod:`sigwatch.worker.websub` for the subscribing side.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
import structlog
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse

from sigwatch.alerts.record import alert_threshold
from sigwatch.api.deps import RuntimeDep, SessionDep
from sigwatch.api.openapi import ErrorOut
from sigwatch.api.schemas import MAX_INT32
from sigwatch.db import websub as rows
from sigwatch.db.models import Source, WebSubSubscription
from sigwatch.db.schedule import PostRate, record_post_rate
from sigwatch.db.types import utcnow
from sigwatch.errors import Forbidden, InvalidInput, NotFound
from sigwatch.live.events import publish_alert_events
from sigwatch.net.client import FetchedResponse
from sigwatch.sources.base import CollectedPost
from sigwatch.sources.rss import parse_posts
from sigwatch.worker.cadence import learn_post_rate
from sigwatch.worker.collect import store_and_detect
from sigwatch.worker.websub import REQUESTED_LEASE_S, signature_valid, token_matches

router = APIRouter(prefix="/websub", tags=["websub"])
log = structlog.get_logger(__name__)

SubscriptionId = Annotated[int, Path(ge=1, le=MAX_INT32)]
Token = Annotated[str, Path(min_length=1, max_length=128)]
#: Longest hub.challenge echoed; hubs send a few dozen characters.
MAX_CHALLENGE_CHARS = 1024
_NO_SUCH = (
    "no such WebSub subscription: the callback is unknown, its token is wrong, or the "
    "subscription was replaced or ended (sigwatch subscribes again by itself)"
)
_GONE = "this WebSub subscription has ended: the hub may stop pushing to it"
_FEED_TYPES = ("application/atom+xml", "application/rss+xml", "application/xml", "text/xml")
_PUSH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The feed's new content, as the hub pushes it (at most 1 MiB).",
        "content": {media_type: {"schema": {"type": "string"}} for media_type in _FEED_TYPES},
    }
}


def _error(description: str) -> dict[str, Any]:
    # Content spelled out: with a plain-text route, FastAPI would document a model as text.
    schema = {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@router.get(
    "/{subscription_id}/{token}",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "The verification is confirmed: the body is hub.challenge.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        404: _error("sigwatch does not want this (un)subscription: unknown callback or topic."),
    },
)
async def verify_intent(
    subscription_id: SubscriptionId,
    token: Token,
    runtime: RuntimeDep,
    session: SessionDep,
    mode: Annotated[Literal["subscribe", "unsubscribe", "denied"], Query(alias="hub.mode")],
    topic: Annotated[str, Query(alias="hub.topic", max_length=4096)],
    challenge: Annotated[
        str | None, Query(alias="hub.challenge", max_length=MAX_CHALLENGE_CHARS)
    ] = None,
    lease_seconds: Annotated[
        int | None, Query(alias="hub.lease_seconds", ge=1, le=MAX_INT32)
    ] = None,
    reason: Annotated[str | None, Query(alias="hub.reason", max_length=1000)] = None,
) -> PlainTextResponse:
    """Answer a hub's verification of intent: echo hub.challenge when sigwatch asked for this
    (un)subscription of this topic, 404 otherwise; record a denial (hub.mode=denied)."""
    sub = await _subscription(session, subscription_id, token, runtime.secret_key)
    if topic != sub.topic_url:
        raise NotFound(f"{_NO_SUCH}; hub.topic is not the topic subscribed to")
    now = utcnow()
    if mode == "denied":
        if sub.state not in rows.LIVE_STATES:
            raise NotFound(_NO_SUCH)
        denial = f"the hub denied the subscription: {reason or 'no reason given'}"
        await rows.record_denial(session, sub.id, reason=denial, now=now)
        await rows.poll_sooner(session, [sub.source_id], now=now)
        await session.commit()
        log.warning("websub subscription denied", source_id=sub.source_id, reason=reason)
        return PlainTextResponse("")
    if challenge is None:
        raise InvalidInput("hub.challenge", f"is required with hub.mode={mode}")
    if mode == "subscribe" and sub.state in rows.LIVE_STATES:
        lease = lease_seconds or REQUESTED_LEASE_S
        await rows.confirm_subscription(session, sub.id, lease_s=lease, now=now)
        await session.commit()
        log.info("websub subscription verified", source_id=sub.source_id, lease_s=lease)
    elif mode == "unsubscribe" and sub.state == rows.UNSUBSCRIBING:
        await rows.set_state(session, sub.id, rows.UNSUBSCRIBED)
        await session.commit()
        log.info("websub unsubscription verified", source_id=sub.source_id)
    else:
        raise NotFound(f"{_NO_SUCH}; sigwatch did not ask to {mode}")
    return PlainTextResponse(challenge)


@router.post(
    "/{subscription_id}/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=_PUSH_BODY,
    responses={
        403: _error("The X-Hub-Signature is missing or wrong: the push was refused and counted."),
        410: _error("The subscription has ended, or its source was paused or removed."),
    },
)
async def receive_push(
    subscription_id: SubscriptionId,
    token: Token,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
) -> Response:
    """Ingest a pushed feed at once (posts, detection, alerts, deliveries), if its HMAC
    signature is valid; 403 and a recorded refusal if not, without storing anything."""
    sub = await _subscription(session, subscription_id, token, runtime.secret_key)
    source = await session.get(Source, sub.source_id)
    if (
        sub.state not in rows.LIVE_STATES
        or source is None
        or not source.enabled
        or source.deleted_at is not None
    ):
        return JSONResponse({"detail": _GONE}, status_code=status.HTTP_410_GONE)
    body = await request.body()  # at most 1 MiB: BodySizeLimitMiddleware answers 413 beyond
    now = utcnow()
    if not signature_valid(sub, body, request.headers.get("x-hub-signature"), runtime.secret_key):
        await rows.record_push(session, sub.id, accepted=False, now=now)
        await session.commit()
        log.warning("websub push refused", source_id=sub.source_id, reason="bad signature")
        raise Forbidden(
            "the X-Hub-Signature header is missing or is not the HMAC of this body under the "
            "subscription's secret: the push was refused"
        )
    posts = _pushed_posts(body, request.headers.get("content-type"), source, sub)
    stored, changes = await store_and_detect(
        session,
        source.id,
        source.name,
        posts,
        runtime.detectors,
        alert_threshold(runtime.settings),
    )
    if stored.new_ids:  # pushed posts teach the source's posting rate as polled ones do
        before = PostRate(source.post_gap_s, source.post_gap_samples, source.last_new_post_at)
        learnt = learn_post_rate(before, stored.new_published_at, now)
        await record_post_rate(session, source.id, learnt)
    await rows.record_push(session, sub.id, accepted=True, now=now)
    await session.commit()
    history = [change.history_id for change in changes if change.history_id is not None]
    await publish_alert_events(runtime.bus, runtime.sessions, history)
    log.info(
        "websub push ingested",
        source_id=source.id,
        fetched=len(posts),
        new_posts=len(stored.new_ids),
        updated_posts=len(stored.updated_ids),
        alerts=len(changes),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _subscription(
    session: SessionDep, subscription_id: int, token: str, secret_key: str
) -> WebSubSubscription:
    sub = await rows.get_subscription(session, subscription_id)
    if sub is None or sub.state == rows.UNSUBSCRIBED or not token_matches(sub, token, secret_key):
        raise NotFound(_NO_SUCH)
    return sub


def _pushed_posts(
    body: bytes, content_type: str | None, source: Source, sub: WebSubSubscription
) -> list[CollectedPost]:
    """The posts of a pushed feed document, made as a poll of the feed makes them."""
    base_url = str(source.config.get("url") or sub.topic_url)
    headers = httpx.Headers({"content-type": content_type} if content_type else {})
    parsed = parse_posts(FetchedResponse(url=base_url, status=200, headers=headers, body=body))
    if not parsed.is_feed:
        raise InvalidInput(
            "body", "is not an RSS or Atom feed: a hub pushes the feed's new content as a feed"
        )
    return parsed.posts
