"""WebSub subscriptions: the rows of which feed is subscribed at which hub, and what pushes did.

Queries only. The protocol (when to subscribe, renew or give up, the signatures) lives in
:mod:`sigwatch.worker.websub`; tokens and secrets arrive here already sealed. State changes are
single UPDATE statements, so the hub's verification (answered by the API) and the worker's
bookkeeping of the request it sent never overwrite each other's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Source, WebSubSubscription

PENDING = "pending"
ACTIVE = "active"
DENIED = "denied"
EXPIRED = "expired"
UNSUBSCRIBING = "unsubscribing"
UNSUBSCRIBED = "unsubscribed"
#: States in which the hub holds (or may hold) a subscription it pushes to.
LIVE_STATES = frozenset({PENDING, ACTIVE, EXPIRED})


@dataclass(frozen=True, slots=True)
class WebSubWork:
    """A feed source that names a hub or has a subscription: what the worker decides from."""

    source_id: int
    wanted: bool  # enabled and not removed
    state: dict[str, Any]
    subscription: WebSubSubscription | None


async def list_websub_work(session: AsyncSession, *, kind: str, hub_key: str) -> list[WebSubWork]:
    """Every source of ``kind`` whose fetch state names a hub (``state[hub_key]``), or that has
    a subscription row, with that row."""
    names_hub = Source.state[hub_key].as_string().is_not(None)
    rows = await session.execute(
        select(Source.id, Source.enabled, Source.deleted_at, Source.state, WebSubSubscription)
        .outerjoin(WebSubSubscription, WebSubSubscription.source_id == Source.id)
        .where(Source.kind == kind, or_(names_hub, WebSubSubscription.id.is_not(None)))
        .order_by(Source.id)
    )
    return [
        WebSubWork(
            source_id=row.id,
            wanted=bool(row.enabled) and row.deleted_at is None,
            state=dict(row.state or {}),
            subscription=row.WebSubSubscription,
        )
        for row in rows
    ]


async def get_subscription(
    session: AsyncSession, subscription_id: int
) -> WebSubSubscription | None:
    """The subscription with this id, if any."""
    return await session.get(WebSubSubscription, subscription_id)


async def get_source_subscription(
    session: AsyncSession, source_id: int
) -> WebSubSubscription | None:
    """The subscription of this source, if it has one."""
    return await session.scalar(
        select(WebSubSubscription).where(WebSubSubscription.source_id == source_id)
    )


async def start_subscription(
    session: AsyncSession,
    *,
    source_id: int,
    hub_url: str,
    topic_url: str,
    callback_token: str,
    secret: str,
    now: datetime,
    replacing: WebSubSubscription | None,
) -> WebSubSubscription | None:
    """A pending subscription of the source at ``hub_url``, replacing ``replacing`` (the
    source's row as the caller read it, or None if it read none); None when another worker
    has made or changed it since, so that only one worker subscribes.

    The earlier row (another hub, or one that ended) is reused, with the new token and secret,
    so that whatever its hub still pushes to the old callback is refused.
    """
    fields: dict[str, Any] = {
        "hub_url": hub_url,
        "topic_url": topic_url,
        "callback_token": callback_token,
        "secret": secret,
        "state": PENDING,
        "lease_s": None,
        "lease_expires_at": None,
        "verified_at": None,
        "requested_at": None,
        "last_error": None,
    }
    if replacing is not None:
        # Compare and set on what the caller read: of two workers replacing the same row, the
        # second finds it changed and leaves it to the first.
        requested = WebSubSubscription.requested_at
        result = await session.execute(
            update(WebSubSubscription)
            .where(
                WebSubSubscription.id == replacing.id,
                WebSubSubscription.state == replacing.state,
                WebSubSubscription.hub_url == replacing.hub_url,
                WebSubSubscription.topic_url == replacing.topic_url,
                requested.is_(None)
                if replacing.requested_at is None
                else requested == replacing.requested_at,
            )
            .values(**fields)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return await session.get(WebSubSubscription, replacing.id, populate_existing=True)
    if await get_source_subscription(session, source_id) is not None:
        return None  # another worker made it after the caller looked
    row = WebSubSubscription(source_id=source_id, created_at=now, **fields)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another worker started it a moment ago: it is theirs
        return None
    return row


async def set_state(
    session: AsyncSession, subscription_id: int, state: str, *, error: str | None = None
) -> None:
    """Move the subscription to ``state``, keeping ``error`` as the reason when given."""
    values: dict[str, Any] = {"state": state}
    if error is not None:
        values["last_error"] = error
    await _update(session, subscription_id, values)


async def claim_request(
    session: AsyncSession, subscription_id: int, *, seen: datetime | None, now: datetime
) -> bool:
    """Take the sending of the next request to the hub: True for the one caller that moves
    ``requested_at`` on from ``seen`` (what it read), so workers never send it twice."""
    last = WebSubSubscription.requested_at
    result = await session.execute(
        update(WebSubSubscription)
        .where(
            WebSubSubscription.id == subscription_id,
            last.is_(None) if seen is None else last == seen,
        )
        .values(requested_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_request_error(
    session: AsyncSession, subscription_id: int, *, error: str | None
) -> None:
    """Keep how the last request to the hub went (None: the hub took it)."""
    await _update(session, subscription_id, {"last_error": error})


async def confirm_subscription(
    session: AsyncSession, subscription_id: int, *, lease_s: int, now: datetime
) -> None:
    """The hub verified the (re)subscription: active for ``lease_s`` seconds from now."""
    await _update(
        session,
        subscription_id,
        {
            "state": ACTIVE,
            "lease_s": lease_s,
            "lease_expires_at": now + timedelta(seconds=lease_s),
            "verified_at": now,
            "last_error": None,
        },
    )


async def record_denial(
    session: AsyncSession, subscription_id: int, *, reason: str, now: datetime
) -> None:
    """The hub denied the subscription (``reason`` as it gave it)."""
    await _update(
        session,
        subscription_id,
        {"state": DENIED, "last_error": reason, "lease_expires_at": None, "verified_at": now},
    )


async def record_push(
    session: AsyncSession, subscription_id: int, *, accepted: bool, now: datetime
) -> None:
    """Count one push, accepted (its signature held) or refused."""
    if accepted:
        values: dict[str, Any] = {
            "pushes_accepted": WebSubSubscription.pushes_accepted + 1,
            "last_push_at": now,
        }
    else:
        values = {"pushes_refused": WebSubSubscription.pushes_refused + 1}
    await _update(session, subscription_id, values)


async def expire_lapsed(session: AsyncSession, *, now: datetime) -> list[int]:
    """Mark expired every active subscription whose lease has run out; their source ids."""
    rows = await session.execute(
        update(WebSubSubscription)
        .where(WebSubSubscription.state == ACTIVE, WebSubSubscription.lease_expires_at <= now)
        .values(state=EXPIRED)
        .returning(WebSubSubscription.source_id)
        .execution_options(synchronize_session=False)
    )
    return [int(row[0]) for row in rows]


async def has_active_subscription(session: AsyncSession, source_id: int, *, now: datetime) -> bool:
    """Whether the source has a verified subscription whose lease still runs."""
    found = await session.scalar(
        select(WebSubSubscription.id).where(
            WebSubSubscription.source_id == source_id,
            WebSubSubscription.state == ACTIVE,
            or_(
                WebSubSubscription.lease_expires_at.is_(None),
                WebSubSubscription.lease_expires_at > now,
            ),
        )
    )
    return found is not None


async def poll_sooner(session: AsyncSession, source_ids: list[int], *, now: datetime) -> None:
    """Make the sources due now if their next poll was later (push stopped: poll as usual)."""
    if not source_ids:
        return
    await session.execute(
        update(Source)
        .where(and_(Source.id.in_(source_ids), Source.next_poll_at > now))
        .values(next_poll_at=now)
        .execution_options(synchronize_session=False)
    )


async def _update(session: AsyncSession, subscription_id: int, values: dict[str, Any]) -> None:
    await session.execute(
        update(WebSubSubscription)
        .where(WebSubSubscription.id == subscription_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
