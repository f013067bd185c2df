"""Deliveries: the outbox as its owners see it, and requeuing dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.api.delivery_schemas import (
    DeliveryOut,
    DeliveryStatus,
    RequeueOut,
    RequeueRequest,
)
from sigwatch.api.deps import CurrentPrincipal, Principal, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT32, MAX_INT64, PageOut, page_out
from sigwatch.db import deliveries
from sigwatch.db.audit import record_audit
from sigwatch.db.models import Delivery
from sigwatch.errors import InvalidInput

router = APIRouter(prefix=f"{API_PREFIX}/deliveries", tags=["deliveries"])

DeliveryId = Annotated[int, Path(ge=1, le=MAX_INT64)]


@router.get("")
async def list_deliveries(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    channel_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    alert_id: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[DeliveryOut]:
    """Deliveries to your channels (every channel for admins), newest first."""
    page = await deliveries.list_deliveries(
        session,
        owner_id=principal.owner_filter,
        status=status,
        channel_id=channel_id,
        alert_id=alert_id,
        cursor=cursor,
        limit=limit,
    )
    return page_out(page, DeliveryOut.model_validate)


@router.post("/requeue", responses=error_responses(404, 409))
async def requeue_many(
    body: RequeueRequest, principal: CurrentPrincipal, session: SessionDep
) -> RequeueOut:
    """Send dead letters again, by ``ids`` (all or none) or every dead one (``status``: "dead")."""
    if (body.ids is None) == (body.status is None):
        raise InvalidInput("ids", 'give either ids or status "dead", not both')
    if body.ids is not None:
        if body.channel_id is not None:
            raise InvalidInput("channel_id", 'only goes with status "dead", not with ids')
        requeued = await deliveries.requeue_deliveries(
            session, body.ids, owner_id=principal.owner_filter
        )
    else:
        requeued = await deliveries.requeue_dead_letters(
            session, owner_id=principal.owner_filter, channel_id=body.channel_id
        )
    await _audit_requeue(session, principal, requeued)
    await session.commit()
    return RequeueOut(requeued=len(requeued), ids=[delivery.id for delivery in requeued])


@router.get("/{delivery_id}")
async def get_delivery(
    delivery_id: DeliveryId, principal: CurrentPrincipal, session: SessionDep
) -> DeliveryOut:
    """One delivery."""
    delivery = await deliveries.get_delivery(session, delivery_id, owner_id=principal.owner_filter)
    return DeliveryOut.model_validate(delivery)


@router.post("/{delivery_id}/requeue", responses=error_responses(409))
async def requeue_one(
    delivery_id: DeliveryId, principal: CurrentPrincipal, session: SessionDep
) -> DeliveryOut:
    """Send one dead letter again from its first attempt; 409 when it is not dead."""
    (delivery,) = await deliveries.requeue_deliveries(
        session, [delivery_id], owner_id=principal.owner_filter
    )
    await _audit_requeue(session, principal, [delivery])
    await session.commit()
    return DeliveryOut.model_validate(delivery)


async def _audit_requeue(
    session: AsyncSession, principal: Principal, requeued: list[Delivery]
) -> None:
    # One row per delivery, so each delivery's own trail shows who sent it again.
    for delivery in requeued:
        await record_audit(
            session,
            principal.user,
            "requeue",
            "delivery",
            delivery.id,
            {"status": deliveries.DEAD, "last_error": delivery.last_error},
            {"status": delivery.status, "attempts": delivery.attempts},
        )
