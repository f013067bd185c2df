"""Subscriptions (which alerts go to which channels, how often) and silences (what to mute)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from sigwatch.api.delivery_schemas import (
    SilenceCreate,
    SilenceOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
)
from sigwatch.api.deps import CurrentPrincipal, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT32, PageOut, page_out
from sigwatch.db import subscriptions
from sigwatch.db.audit import record_audit, snapshot

# Two resources, one router: their full paths are written on each route.
router = APIRouter(prefix=API_PREFIX)

SubscriptionId = Annotated[int, Path(ge=1, le=MAX_INT32)]
SilenceId = Annotated[int, Path(ge=1, le=MAX_INT32)]


# --- subscriptions -------------------------------------------------------------------------------


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, tags=["subscriptions"])
async def create_subscription(
    body: SubscriptionCreate, principal: CurrentPrincipal, session: SessionDep
) -> SubscriptionOut:
    """Subscribe the caller to the alerts ``filters`` match, sent to their own channels."""
    fields: dict[str, Any] = body.model_dump()
    subscription = await subscriptions.create_subscription(
        session, owner_id=principal.user.id, sources_of=principal.owner_filter, **fields
    )
    await record_audit(
        session,
        principal.user,
        "create",
        "subscription",
        subscription.id,
        None,
        snapshot(subscription),
    )
    await session.commit()
    return SubscriptionOut.model_validate(subscription)


@router.get("/subscriptions", tags=["subscriptions"])
async def list_subscriptions(
    principal: CurrentPrincipal,
    session: SessionDep,
    enabled: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[SubscriptionOut]:
    """Your subscriptions (everyone's for admins), in the order they were added."""
    page = await subscriptions.list_subscriptions(
        session, owner_id=principal.owner_filter, enabled=enabled, cursor=cursor, limit=limit
    )
    return page_out(page, SubscriptionOut.model_validate)


@router.get("/subscriptions/{subscription_id}", tags=["subscriptions"])
async def get_subscription(
    subscription_id: SubscriptionId, principal: CurrentPrincipal, session: SessionDep
) -> SubscriptionOut:
    """One subscription."""
    subscription = await subscriptions.get_subscription(
        session, subscription_id, owner_id=principal.owner_filter
    )
    return SubscriptionOut.model_validate(subscription)


@router.patch("/subscriptions/{subscription_id}", tags=["subscriptions"])
async def update_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> SubscriptionOut:
    """Change a subscription; ``filters`` replaces them all, null ``quiet_hours`` ends them."""
    subscription = await subscriptions.get_subscription(
        session, subscription_id, owner_id=principal.owner_filter
    )
    before = snapshot(subscription)
    subscription = await subscriptions.update_subscription(
        session,
        subscription_id,
        body.model_dump(exclude_unset=True),
        owner_id=principal.owner_filter,
        sources_of=principal.owner_filter,
    )
    await record_audit(
        session,
        principal.user,
        "update",
        "subscription",
        subscription.id,
        before,
        snapshot(subscription),
    )
    await session.commit()
    return SubscriptionOut.model_validate(subscription)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["subscriptions"],
)
async def delete_subscription(
    subscription_id: SubscriptionId, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """Delete a subscription; notifications already queued for it are still sent."""
    subscription = await subscriptions.get_subscription(
        session, subscription_id, owner_id=principal.owner_filter
    )
    before = snapshot(subscription)
    await subscriptions.delete_subscription(
        session, subscription_id, owner_id=principal.owner_filter
    )
    await record_audit(
        session, principal.user, "delete", "subscription", subscription_id, before, None
    )
    await session.commit()


# --- silences ------------------------------------------------------------------------------------


@router.post(
    "/silences",
    status_code=status.HTTP_201_CREATED,
    tags=["silences"],
    responses=error_responses(404),  # an unknown alert, entity or channel
)
async def create_silence(
    body: SilenceCreate, principal: CurrentPrincipal, session: SessionDep
) -> SilenceOut:
    """Mute an entity, an event or both for the caller, until a time or for a duration."""
    silence = await subscriptions.create_silence(
        session, owner_id=principal.user.id, **body.model_dump()
    )
    await record_audit(
        session, principal.user, "create", "silence", silence.id, None, snapshot(silence)
    )
    await session.commit()
    return SilenceOut.model_validate(silence)


@router.get("/silences", tags=["silences"])
async def list_silences(
    principal: CurrentPrincipal,
    session: SessionDep,
    include_ended: Annotated[
        bool, Query(alias="all", description="Include silences that have ended.")
    ] = False,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[SilenceOut]:
    """Your silences still running (with ``all=true`` the ended ones too), oldest first."""
    page = await subscriptions.list_silences(
        session,
        owner_id=principal.owner_filter,
        include_expired=include_ended,
        cursor=cursor,
        limit=limit,
    )
    return page_out(page, SilenceOut.model_validate)


@router.get("/silences/{silence_id}", tags=["silences"])
async def get_silence(
    silence_id: SilenceId, principal: CurrentPrincipal, session: SessionDep
) -> SilenceOut:
    """One silence, running or ended."""
    silence = await subscriptions.get_silence(session, silence_id, owner_id=principal.owner_filter)
    return SilenceOut.model_validate(silence)


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["silences"])
async def delete_silence(
    silence_id: SilenceId, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """End a silence now by deleting it."""
    before = snapshot(
        await subscriptions.get_silence(session, silence_id, owner_id=principal.owner_filter)
    )
    await subscriptions.delete_silence(session, silence_id, owner_id=principal.owner_filter)
    await record_audit(session, principal.user, "delete", "silence", silence_id, before, None)
    await session.commit()
