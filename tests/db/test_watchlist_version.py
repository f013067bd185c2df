"""The compiled watchlist is reused while nothing changed and rebuilt after any change."""

from __future__ import annotations

from sigwatch.alerts.detectors import DetectorCache
from sigwatch.db.entities import create_entity, delete_entity, update_entity


async def test_the_detector_is_rebuilt_after_an_entity_is_added_changed_or_removed(sessions):
    cache = DetectorCache()
    async with sessions() as session:
        empty = await cache.get(session)
        assert await cache.get(session) is empty  # nothing changed: the same detector

    async with sessions.begin() as session:
        entity = await create_entity(session, name="Helix Network", symbols=["HLX"])
    async with sessions() as session:
        added = await cache.get(session)
        assert added is not empty
        assert await cache.get(session) is added

    async with sessions.begin() as session:
        await update_entity(session, entity.id, {"aliases": ["Helix"]})
    async with sessions() as session:
        changed = await cache.get(session)
        assert changed is not added

    async with sessions.begin() as session:
        await delete_entity(session, entity.id)
    async with sessions() as session:
        assert await cache.get(session) is not changed
