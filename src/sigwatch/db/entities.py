"""Entities: the shared watchlist of projects, companies, tickers and people, by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Entity
from sigwatch.db.pagination import (
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.errors import Conflict, InvalidInput

#: The list-of-strings fields of an entity: the names it goes by in posts.
LIST_FIELDS = ("aliases", "symbols", "handles", "domains", "tags")
_FIELDS = frozenset({"name", "priority", *LIST_FIELDS})
_MAX_TEXT = 200


async def create_entity(
    session: AsyncSession,
    *,
    name: str,
    aliases: Iterable[str] = (),
    symbols: Iterable[str] = (),
    handles: Iterable[str] = (),
    domains: Iterable[str] = (),
    tags: Iterable[str] = (),
    priority: int = 0,
) -> Entity:
    """Add an entity; Conflict when the name (compared without case) is taken."""
    name = _clean_name(name)
    await _ensure_name_free(session, name, except_id=None)
    entity = Entity(
        name=name,
        aliases=_clean_list("aliases", aliases),
        symbols=_clean_list("symbols", symbols),
        handles=_clean_list("handles", handles),
        domains=_clean_list("domains", domains),
        tags=_clean_list("tags", tags),
        priority=priority,
    )
    session.add(entity)
    await _flush(session, name)
    return entity


async def get_entity(session: AsyncSession, entity_id: int) -> Entity:
    """The entity with this id, or NotFound."""
    return await get_visible(session, Entity, entity_id, "entity")


async def get_entity_by_name(session: AsyncSession, name: str) -> Entity | None:
    """The entity with this name, compared without case, or None."""
    stmt = select(Entity).where(func.lower(Entity.name) == name.strip().lower()).limit(1)
    return (await session.scalars(stmt)).first()


async def list_entities(
    session: AsyncSession, *, q: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[Entity]:
    """Entities in creation order; ``q`` keeps those whose name contains it (without case)."""
    check_limit(limit)
    stmt = select(Entity).order_by(Entity.id).limit(limit + 1)
    if q:
        stmt = stmt.where(func.lower(Entity.name).contains(q.lower(), autoescape=True))
    if cursor is not None:
        stmt = stmt.where(Entity.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def tags_by_entity_id(
    session: AsyncSession, entity_ids: Iterable[int]
) -> dict[int, list[str]]:
    """The tags of each of these entities, by id; an id no entity has is left out."""
    wanted = set(entity_ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Entity.id, Entity.tags).where(Entity.id.in_(wanted)))
    return {entity_id: list(tags) for entity_id, tags in rows.all()}


async def update_entity(
    session: AsyncSession, entity_id: int, changes: Mapping[str, Any]
) -> Entity:
    """Change any of name, priority and the list fields; Conflict when the new name is taken."""
    unknown = set(changes) - _FIELDS
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a field of an entity")
    entity = await get_entity(session, entity_id)
    if "name" in changes:
        name = _clean_name(changes["name"])
        await _ensure_name_free(session, name, except_id=entity.id)
        entity.name = name
    for field in LIST_FIELDS:
        if field in changes:
            setattr(entity, field, _clean_list(field, changes[field]))
    if "priority" in changes:
        entity.priority = changes["priority"]
    await _flush(session, entity.name)
    return entity


async def delete_entity(session: AsyncSession, entity_id: int) -> Entity:
    """Remove an entity from the watchlist; returns the removed entity."""
    entity = await get_entity(session, entity_id)
    await session.delete(entity)
    await session.flush()
    return entity


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("name", "must not be blank")
    if len(name) > _MAX_TEXT:
        raise InvalidInput("name", f"must be at most {_MAX_TEXT} characters")
    return name


def _clean_list(field: str, values: Iterable[str]) -> list[str]:
    """Strip each value, drop blanks and repeats (compared without case), keep the order."""
    kept: list[str] = []
    seen: set[str] = set()
    for raw in values:
        value = raw.strip()
        if len(value) > _MAX_TEXT:
            raise InvalidInput(field, f"each value must be at most {_MAX_TEXT} characters")
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return kept


async def _ensure_name_free(session: AsyncSession, name: str, *, except_id: int | None) -> None:
    existing = await get_entity_by_name(session, name)
    if existing is not None and existing.id != except_id:
        raise Conflict(f"an entity named {name!r} exists already: edit that one instead")


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        # Another request took the name between the check and the write.
        raise Conflict(f"an entity named {name!r} exists already: edit that one instead") from None
