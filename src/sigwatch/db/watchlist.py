"""The stored watchlist: entity rows and rule overrides, read whole and imported whole.

Rows and JSON only: turning them into the detector's ``Watchlist`` is
:mod:`sigwatch.alerts.watchlist`'s job, so storage never imports the detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.entities import create_entity, get_entity_by_name, update_entity
from sigwatch.db.models import Entity as EntityRow
from sigwatch.db.models import RuleOverrideRow
from sigwatch.db.types import utcnow
from sigwatch.errors import NotFound


@dataclass(frozen=True, slots=True)
class WatchlistRows:
    """Every entity row (in id order) and every rule override row."""

    entities: Sequence[EntityRow]
    rules: Sequence[RuleOverrideRow]


async def watchlist_rows(session: AsyncSession) -> WatchlistRows:
    """Every entity and rule override, as stored."""
    entities = (await session.scalars(select(EntityRow).order_by(EntityRow.id))).all()
    rules = (await session.scalars(select(RuleOverrideRow).order_by(RuleOverrideRow.event))).all()
    return WatchlistRows(entities=entities, rules=rules)


async def watchlist_version(session: AsyncSession) -> tuple[Any, ...]:
    """A cheap fingerprint that changes whenever an entity or rule override changes.

    One statement (a poll asks for it each time): the count and newest change of each table.
    """
    row = (
        await session.execute(
            select(
                *(
                    select(aggregate).select_from(table).scalar_subquery()
                    for table in (EntityRow, RuleOverrideRow)
                    for aggregate in (func.count(), func.max(table.updated_at))
                )
            )
        )
    ).one()
    return tuple(row)


async def store_watchlist(
    session: AsyncSession,
    entities: Sequence[tuple[str, Mapping[str, Any]]],
    rules: Mapping[str, Mapping[str, Any]],
    *,
    actor: str,
) -> tuple[int, int, int]:
    """Add or update each (name, fields) entity by name and replace the rule overrides.

    Returns (added, updated, rules). Runs inside the caller's transaction, so a failure leaves
    nothing half-imported; each entity that changed gets an audit row.
    """
    added = updated = 0
    for name, fields in entities:
        existing = await get_entity_by_name(session, name)
        if existing is None:
            row = await create_entity(session, name=name, **fields)
            await record_audit(session, actor, "import", "entity", row.id, None, snapshot(row))
            added += 1
            continue
        before = snapshot(existing)
        row = await update_entity(session, existing.id, fields)
        after = snapshot(row)
        if after != before:
            await record_audit(session, actor, "import", "entity", row.id, before, after)
            updated += 1
    await session.execute(delete(RuleOverrideRow))
    for event, config in rules.items():
        session.add(RuleOverrideRow(event=event, config=dict(config)))
    await session.flush()
    return added, updated, len(rules)


async def list_rule_overrides(session: AsyncSession) -> list[RuleOverrideRow]:
    """Every stored rule override, by event."""
    rows = await session.scalars(select(RuleOverrideRow).order_by(RuleOverrideRow.event))
    return list(rows.all())


async def set_rule_override(
    session: AsyncSession, event: str, config: Mapping[str, Any]
) -> tuple[RuleOverrideRow, dict[str, Any] | None]:
    """Store ``config`` as ``event``'s rule override; returns the row and the config replaced."""
    row = await session.get(RuleOverrideRow, event)
    before = dict(row.config) if row is not None else None
    if row is None:
        row = RuleOverrideRow(event=event, config=dict(config))
        session.add(row)
    else:
        row.config = dict(config)
        row.updated_at = utcnow()
    await session.flush()
    return row, before


async def delete_rule_override(session: AsyncSession, event: str) -> dict[str, Any]:
    """Drop the override of ``event``'s rule, back to the built-in rule; NotFound if none."""
    row = await session.get(RuleOverrideRow, event)
    if row is None:
        raise NotFound(f"the {event} rule has no override")
    before = dict(row.config)
    await session.delete(row)
    await session.flush()
    return before
