"""The watchlist as the detector sees it: entities and rule overrides, loaded and replaced whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.entities import create_entity, get_entity_by_name, update_entity
from sigwatch.db.models import Entity as EntityRow
from sigwatch.db.models import RuleOverrideRow
from sigwatch.db.types import utcnow
from sigwatch.detect.watchlist import Entity, RuleOverride, Watchlist
from sigwatch.errors import NotFound


@dataclass(frozen=True, slots=True)
class StoredWatchlist:
    """The watchlist read from the database, with each entity's row id by name."""

    watchlist: Watchlist
    entity_ids: Mapping[str, int]


def rule_to_json(rule: RuleOverride) -> dict[str, Any]:
    """A rule override as stored."""
    return {
        "enabled": rule.enabled,
        "keywords": {tier: list(words) for tier, words in rule.keywords.items()},
        "cancels": list(rule.cancels),
        "min_confidence": rule.min_confidence,
    }


def rule_from_json(data: Mapping[str, Any]) -> RuleOverride:
    """A stored rule override."""
    return RuleOverride(
        enabled=bool(data.get("enabled", True)),
        keywords={tier: tuple(words) for tier, words in (data.get("keywords") or {}).items()},
        cancels=tuple(data.get("cancels") or ()),
        min_confidence=data.get("min_confidence"),
    )


async def load_watchlist(session: AsyncSession) -> StoredWatchlist:
    """Every entity and rule override, as a detector watchlist."""
    rows = (await session.scalars(select(EntityRow).order_by(EntityRow.id))).all()
    rules = (await session.scalars(select(RuleOverrideRow))).all()
    entities = tuple(
        Entity(
            name=row.name,
            aliases=tuple(row.aliases),
            symbols=tuple(row.symbols),
            handles=tuple(row.handles),
            domains=tuple(row.domains),
            tags=tuple(row.tags),
            priority=row.priority,
        )
        for row in rows
    )
    return StoredWatchlist(
        watchlist=Watchlist(
            entities=entities, rules={rule.event: rule_from_json(rule.config) for rule in rules}
        ),
        entity_ids={row.name: row.id for row in rows},
    )


async def watchlist_version(session: AsyncSession) -> tuple[Any, ...]:
    """A cheap fingerprint that changes whenever an entity or rule override changes."""
    entities = (
        await session.execute(
            select(func.count(), func.max(EntityRow.updated_at)).select_from(EntityRow)
        )
    ).one()
    rules = (
        await session.execute(
            select(func.count(), func.max(RuleOverrideRow.updated_at)).select_from(RuleOverrideRow)
        )
    ).one()
    return (*entities, *rules)


async def import_watchlist(
    session: AsyncSession, watchlist: Watchlist, *, actor: str
) -> tuple[int, int, int]:
    """Add or update every entity by name and replace the rule overrides; (added, updated, rules).

    Runs inside the caller's transaction, so a failure leaves nothing half-imported.
    """
    added = updated = 0
    for entity in watchlist.entities:
        fields: dict[str, Any] = {
            "aliases": list(entity.aliases),
            "symbols": list(entity.symbols),
            "handles": list(entity.handles),
            "domains": list(entity.domains),
            "tags": list(entity.tags),
            "priority": entity.priority,
        }
        existing = await get_entity_by_name(session, entity.name)
        if existing is None:
            row = await create_entity(session, name=entity.name, **fields)
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
    for event, rule in watchlist.rules.items():
        session.add(RuleOverrideRow(event=event, config=rule_to_json(rule)))
    await session.flush()
    return added, updated, len(watchlist.rules)


async def list_rule_overrides(session: AsyncSession) -> list[RuleOverrideRow]:
    """Every stored rule override, by event."""
    rows = await session.scalars(select(RuleOverrideRow).order_by(RuleOverrideRow.event))
    return list(rows.all())


async def set_rule_override(
    session: AsyncSession, event: str, rule: RuleOverride
) -> tuple[RuleOverrideRow, dict[str, Any] | None]:
    """Store the override of ``event``'s rule; returns the row and the config it replaced."""
    row = await session.get(RuleOverrideRow, event)
    before = dict(row.config) if row is not None else None
    if row is None:
        row = RuleOverrideRow(event=event, config=rule_to_json(rule))
        session.add(row)
    else:
        row.config = rule_to_json(rule)
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
