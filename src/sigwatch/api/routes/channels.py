"""Channels: create, list, read, change, delete, and send a test message now.

A config comes back masked in every response and audit row; the secrets sigwatch generates for
a new channel (a webhook's signing secret) are shown once, in the create response.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from sigwatch.api.delivery_schemas import (
    ChannelCreate,
    ChannelCreated,
    ChannelKind,
    ChannelOut,
    ChannelTestOut,
    ChannelUpdate,
)
from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT32, PageOut, page_out
from sigwatch.db import channels
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Channel
from sigwatch.delivery.compose import channel_test_message
from sigwatch.delivery.send import send_to_channel
from sigwatch.errors import ConfigError, DeliveryError
from sigwatch.manage.channels import create_channel as add_channel
from sigwatch.manage.channels import shown_config
from sigwatch.manage.channels import update_channel as change_channel
from sigwatch.net.client import OutboundClient

router = APIRouter(prefix=f"{API_PREFIX}/channels", tags=["channels"])

ChannelId = Annotated[int, Path(ge=1, le=MAX_INT32)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelCreate, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> ChannelCreated:
    """Add a channel owned by the caller; generated secrets are in the answer, this once only."""
    channel, generated = await add_channel(
        session,
        owner_id=principal.user.id,
        kind=body.kind,
        name=body.name,
        config=body.config,
        secret_key=runtime.secret_key,
        lease_s=runtime.settings.lease_s,
        enabled=body.enabled,
        rate_limit_per_min=body.rate_limit_per_min,
    )
    after = _audited(channel, runtime.secret_key)
    await record_audit(session, principal.user, "create", "channel", channel.id, None, after)
    await session.commit()
    return ChannelCreated.model_validate(
        {**_out(channel, runtime.secret_key).model_dump(), "generated_secrets": generated}
    )


@router.get("")
async def list_channels(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
    kind: Annotated[ChannelKind | None, Query()] = None,
    enabled: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[ChannelOut]:
    """Your channels (all channels for admins), in the order they were added."""
    page = await channels.list_channels(
        session,
        owner_id=principal.owner_filter,
        kind=kind,
        enabled=enabled,
        cursor=cursor,
        limit=limit,
    )
    return page_out(page, lambda channel: _out(channel, runtime.secret_key))


@router.get("/{channel_id}")
async def get_channel(
    channel_id: ChannelId, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> ChannelOut:
    """One channel, secrets masked."""
    channel = await channels.get_channel(session, channel_id, owner_id=principal.owner_filter)
    return _out(channel, runtime.secret_key)


@router.patch("/{channel_id}")
async def update_channel(
    channel_id: ChannelId,
    body: ChannelUpdate,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
) -> ChannelOut:
    """Change name, enabled, config or rate_limit_per_min; secrets left out are kept."""
    channel = await channels.get_channel(session, channel_id, owner_id=principal.owner_filter)
    before = _audited(channel, runtime.secret_key)
    channel = await change_channel(
        session,
        channel_id,
        body.model_dump(exclude_unset=True),
        owner_id=principal.owner_filter,
        secret_key=runtime.secret_key,
        lease_s=runtime.settings.lease_s,
    )
    after = _audited(channel, runtime.secret_key)
    await record_audit(session, principal.user, "update", "channel", channel.id, before, after)
    await session.commit()
    return _out(channel, runtime.secret_key)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_channel(
    channel_id: ChannelId, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> None:
    """Delete a channel with its deliveries; subscriptions stop sending to it."""
    channel = await channels.get_channel(session, channel_id, owner_id=principal.owner_filter)
    before = _audited(channel, runtime.secret_key)
    await channels.delete_channel(session, channel_id, owner_id=principal.owner_filter)
    await record_audit(session, principal.user, "delete", "channel", channel_id, before, None)
    await session.commit()


@router.post("/{channel_id}/test")
async def test_channel(
    channel_id: ChannelId, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> ChannelTestOut:
    """Send a test message now, enabled or not; a failed send is 200 with ``ok`` false and why.

    The failure is the receiver's or the channel's, not the API's, so it is an answer, not an
    error status: the caller reads ``detail`` to fix the channel and tries again.
    """
    channel = await channels.get_channel(session, channel_id, owner_id=principal.owner_filter)
    # End the read transaction so no database connection is held while the receiver answers.
    await session.commit()
    try:
        async with OutboundClient.from_settings(runtime.settings) as client:
            receipt = await send_to_channel(
                channel,
                channel_test_message(channel.id),
                secret_key=runtime.secret_key,
                client=client,
            )
    except (DeliveryError, ConfigError) as exc:
        # ConfigError: the stored secrets cannot be opened (the secret key changed).
        result = ChannelTestOut(ok=False, status_code=None, detail=str(exc))
    else:
        result = ChannelTestOut(ok=True, status_code=receipt.status_code, detail=receipt.detail)
    await record_audit(
        session, principal.user, "test", "channel", channel.id, None, result.model_dump()
    )
    await session.commit()
    return result


def _audited(channel: Channel, secret_key: str) -> dict[str, Any]:
    return {**snapshot(channel), "config": shown_config(channel, secret_key)}


def _out(channel: Channel, secret_key: str) -> ChannelOut:
    # Built field by field, so the sealed config read from the row never reaches the wire.
    return ChannelOut(
        id=channel.id,
        owner_id=channel.owner_id,
        kind=channel.kind,
        name=channel.name,
        config=shown_config(channel, secret_key),
        enabled=channel.enabled,
        rate_limit_per_min=channel.rate_limit_per_min,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )
