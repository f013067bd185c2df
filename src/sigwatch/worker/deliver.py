"""Sending claimed deliveries: compose, send, record the answer; never raises."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.alerts import alert_evidence
from sigwatch.db.models import Alert, Channel, Post, Source
from sigwatch.db.outbox import ClaimedDelivery, postpone, record_failure, record_sent, sent_since
from sigwatch.db.types import utcnow
from sigwatch.delivery.compose import compose_digest, compose_message
from sigwatch.delivery.message import AlertMessage, MessageKind
from sigwatch.delivery.retry import is_exhausted, next_attempt_delay_s
from sigwatch.delivery.send import send_to_channel
from sigwatch.errors import PermanentDeliveryError, SigwatchError, TransientDeliveryError
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import DELIVERIES

log = structlog.get_logger(__name__)


async def _evidence(session: AsyncSession, alert: Alert) -> list[tuple[Post, str]]:
    rows = await alert_evidence(session, alert.id, viewer_id=None)
    names = {
        source.id: source.name
        for source in await session.scalars(
            select(Source).where(Source.id.in_({item.source_id for item, _ in rows}))
        )
    }
    return [(post, names.get(item.source_id, str(item.source_id))) for item, post in rows]


async def send_deliveries(
    batch: Sequence[ClaimedDelivery],
    *,
    sessions: async_sessionmaker[AsyncSession],
    client: OutboundClient,
    secret_key: str,
    worker_id: str,
    concurrency: int = 16,
) -> None:
    """Send a claimed batch, ``concurrency`` messages at a time; a digest is one message."""
    groups: dict[tuple[int, int | None], list[ClaimedDelivery]] = defaultdict(list)
    singles: list[list[ClaimedDelivery]] = []
    for delivery in batch:
        if delivery.kind == "digest":
            groups[delivery.channel_id, delivery.subscription_id].append(delivery)
        else:
            singles.append([delivery])
    semaphore = asyncio.Semaphore(concurrency)

    async def one(group: list[ClaimedDelivery]) -> None:
        async with semaphore:
            await _send(group, sessions, client, secret_key, worker_id)

    await asyncio.gather(*(one(group) for group in [*singles, *groups.values()]))


async def _send(
    group: list[ClaimedDelivery],
    sessions: async_sessionmaker[AsyncSession],
    client: OutboundClient,
    secret_key: str,
    worker_id: str,
) -> None:
    """Send one message for ``group`` (one delivery, or a channel's digest) and record it."""
    first = group[0]
    now = utcnow()
    channel: Channel | None = None
    try:
        async with sessions() as session:
            channel = await session.get(Channel, first.channel_id)
            if channel is None or not channel.enabled:
                reason = "the channel was deleted or disabled; enable it and requeue"
                await _fail(sessions, group, worker_id, reason, "unknown", permanent=True)
                return
            if channel.rate_limit_per_min:
                recent = await sent_since(session, channel.id, now - timedelta(minutes=1))
                if recent >= channel.rate_limit_per_min:
                    wait = timedelta(seconds=60 / channel.rate_limit_per_min)
                    async with sessions.begin() as write:
                        for delivery in group:
                            await postpone(
                                write, delivery.id, worker_id=worker_id, until=now + wait
                            )
                    return
            message = await _compose(session, group)
        receipt = await send_to_channel(channel, message, secret_key=secret_key, client=client)
    except TransientDeliveryError as exc:
        await _fail(
            sessions, group, worker_id, str(exc), _kind_of(channel), retry_after_s=exc.retry_after_s
        )
        return
    except PermanentDeliveryError as exc:
        await _fail(sessions, group, worker_id, str(exc), _kind_of(channel), permanent=True)
        return
    except SigwatchError as exc:  # a config that no longer opens, an alert gone
        await _fail(sessions, group, worker_id, str(exc), _kind_of(channel), permanent=True)
        return
    except Exception as exc:  # a bug in a channel must not stop the loop; retried later
        log.exception("delivery crashed", delivery_id=first.id, channel_id=first.channel_id)
        error = f"internal error: {type(exc).__name__}"
        await _fail(sessions, group, worker_id, error, _kind_of(channel))
        return
    async with sessions.begin() as session:
        for delivery in group:
            await record_sent(
                session,
                delivery.id,
                worker_id=worker_id,
                now=utcnow(),
                status_code=receipt.status_code,
                attempts=delivery.attempts + 1,
            )
    DELIVERIES.labels(channel.kind, "sent").inc(len(group))
    log.info(
        "delivery sent",
        delivery_id=first.id,
        channel_id=first.channel_id,
        channel=channel.kind,
        alerts=len(group),
        status=receipt.status_code,
        attempt=first.attempts + 1,
    )


def _kind_of(channel: Channel | None) -> str:
    return channel.kind if channel is not None else "unknown"


async def _compose(session: AsyncSession, group: list[ClaimedDelivery]) -> AlertMessage:
    alerts = []
    for delivery in group:
        alert = await session.get(Alert, delivery.alert_id) if delivery.alert_id else None
        if alert is None:
            raise PermanentDeliveryError(f"alert {delivery.alert_id} no longer exists")
        alerts.append((alert, await _evidence(session, alert)))
    first = group[0]
    if first.kind == "digest":
        return compose_digest(alerts, idempotency_key=f"digest-{first.id}")
    alert, evidence = alerts[0]
    kind: MessageKind = "updated" if first.kind == "updated" else "new"
    return compose_message(alert, evidence, kind=kind, idempotency_key=first.idempotency_key)


async def _fail(
    sessions: async_sessionmaker[AsyncSession],
    group: list[ClaimedDelivery],
    worker_id: str,
    error: str,
    channel_kind: str,
    *,
    permanent: bool = False,
    retry_after_s: float | None = None,
) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        for delivery in group:
            attempts = delivery.attempts + 1
            dead = permanent or is_exhausted(attempts)
            retry_at = (
                None
                if dead
                else now + timedelta(seconds=next_attempt_delay_s(attempts, retry_after_s))
            )
            await record_failure(
                session,
                delivery.id,
                worker_id=worker_id,
                error=error,
                status_code=None,
                attempts=attempts,
                retry_at=retry_at,
            )
    outcome = "dead" if permanent or is_exhausted(group[0].attempts + 1) else "retry"
    DELIVERIES.labels(channel_kind, outcome).inc(len(group))
    log.warning(
        "delivery failed",
        delivery_id=group[0].id,
        channel_id=group[0].channel_id,
        attempt=group[0].attempts + 1,
        outcome=outcome,
        error=error,
    )
