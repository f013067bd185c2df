"""The stored watchlist as the detector sees it: rows turned into a ``Watchlist`` and back.

The detector is pure and storage knows only its tables; this module, above both, converts
between them for the worker, the API and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.watchlist import store_watchlist, watchlist_rows
from sigwatch.detect.watchlist import Entity, RuleOverride, Watchlist


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
    """Every stored entity and rule override, as a detector watchlist."""
    rows = await watchlist_rows(session)
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
        for row in rows.entities
    )
    return StoredWatchlist(
        watchlist=Watchlist(
            entities=entities, rules={row.event: rule_from_json(row.config) for row in rows.rules}
        ),
        entity_ids={row.name: row.id for row in rows.entities},
    )


async def import_watchlist(
    session: AsyncSession, watchlist: Watchlist, *, actor: str
) -> tuple[int, int, int]:
    """Add or update every entity by name and replace the rule overrides; (added, updated, rules).

    Runs inside the caller's transaction, so a failure leaves nothing half-imported.
    """
    entities = [
        (
            entity.name,
            {
                "aliases": list(entity.aliases),
                "symbols": list(entity.symbols),
                "handles": list(entity.handles),
                "domains": list(entity.domains),
                "tags": list(entity.tags),
                "priority": entity.priority,
            },
        )
        for entity in watchlist.entities
    ]
    rules = {event: rule_to_json(rule) for event, rule in watchlist.rules.items()}
    return await store_watchlist(session, entities, rules, actor=actor)
