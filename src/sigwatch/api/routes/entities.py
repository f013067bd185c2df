"""Entities: the shared watchlist; every user reads it, only admins change it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from sigwatch.api.deps import AdminPrincipal, CurrentPrincipal, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    EntityCreate,
    EntityOut,
    EntityUpdate,
    PageOut,
    Text,
    page_out,
)
from sigwatch.db import entities
from sigwatch.db.audit import record_audit, snapshot

router = APIRouter(prefix=f"{API_PREFIX}/entities", tags=["entities"])

EntityId = Annotated[int, Path(ge=1, le=MAX_INT32)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_entity(
    body: EntityCreate, principal: AdminPrincipal, session: SessionDep
) -> EntityOut:
    """Add an entity to the shared watchlist (admins); 409 when the name is taken."""
    entity = await entities.create_entity(session, **body.model_dump())
    await record_audit(
        session, principal.user, "create", "entity", entity.id, None, snapshot(entity)
    )
    await session.commit()
    return EntityOut.model_validate(entity)


@router.get("")
async def list_entities(
    _principal: CurrentPrincipal,
    session: SessionDep,
    q: Annotated[Text | None, Query(max_length=200, description="Part of the name.")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[EntityOut]:
    """The watchlist, in the order entities were added."""
    page = await entities.list_entities(session, q=q, cursor=cursor, limit=limit)
    return page_out(page, EntityOut.model_validate)


@router.get("/{entity_id}")
async def get_entity(
    entity_id: EntityId, _principal: CurrentPrincipal, session: SessionDep
) -> EntityOut:
    """One entity."""
    return EntityOut.model_validate(await entities.get_entity(session, entity_id))


@router.patch("/{entity_id}", responses=error_responses(409))
async def update_entity(
    entity_id: EntityId, body: EntityUpdate, principal: AdminPrincipal, session: SessionDep
) -> EntityOut:
    """Change an entity (admins); a list given replaces the stored one."""
    before = snapshot(await entities.get_entity(session, entity_id))
    entity = await entities.update_entity(session, entity_id, body.model_dump(exclude_unset=True))
    await record_audit(
        session, principal.user, "update", "entity", entity.id, before, snapshot(entity)
    )
    await session.commit()
    return EntityOut.model_validate(entity)


@router.delete("/{entity_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_entity(
    entity_id: EntityId, principal: AdminPrincipal, session: SessionDep
) -> None:
    """Remove an entity from the shared watchlist (admins)."""
    before = snapshot(await entities.get_entity(session, entity_id))
    await entities.delete_entity(session, entity_id)
    await record_audit(session, principal.user, "delete", "entity", entity_id, before, None)
    await session.commit()
