"""First-start set-up of the demo: an admin, the demo feeds as sources, the demo watchlist."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.auth import hash_password
from sigwatch.config import Settings
from sigwatch.db.entities import create_entity, get_entity_by_name
from sigwatch.db.sources import iter_sources
from sigwatch.db.users import count_users, create_user, get_user_by_username
from sigwatch.demo.feeds import DEMO_ENTITIES, DEMO_FEEDS
from sigwatch.manage.sources import create_source, update_source

DEMO_POLL_INTERVAL_S = 10


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What the set-up created: the admin's password (only when it made the admin) and sources."""

    admin_password: str | None
    sources: int


async def setup_demo(
    sessions: async_sessionmaker[AsyncSession],
    base_url: str,
    *,
    secret_key: str = "",
    settings: Settings | None = None,
) -> DemoSetup:
    """Make the demo ready; safe to run at every start (it only adds what is missing).

    The demo feeds are public and have no secret options, so ``secret_key`` (which would seal
    them) may be left empty. Their interval is :data:`DEMO_POLL_INTERVAL_S`, or the rss
    minimum of ``settings`` when that is longer (``sigwatch up --demo`` lowers it, since the
    feeds are served by the process itself).
    """
    password: str | None = None
    minimum_s = (settings or Settings.model_construct()).min_poll_interval_of("rss")
    async with sessions.begin() as session:
        if not await count_users(session):
            password = secrets.token_urlsafe(12)
            await create_user(
                session, username="admin", password_hash=hash_password(password), role="admin"
            )
        admin = await get_user_by_username(session, "admin")
        owner_id = admin.id if admin is not None else None
        existing = {source.name: source async for source in iter_sources(session, kind="rss")}
        for feed in DEMO_FEEDS:
            config: dict[str, Any] = {"url": f"{base_url}/demo/feeds/{feed.slug}.xml"}
            source = existing.get(feed.title)
            if source is None:
                await create_source(
                    session,
                    owner_id=owner_id,
                    kind="rss",
                    name=feed.title,
                    config=config,
                    secret_key=secret_key,
                    poll_interval_s=max(DEMO_POLL_INTERVAL_S, minimum_s),
                    settings=settings,
                )
            elif source.config.get("url") != config["url"]:
                # The demo moved to another port since the last start.
                await update_source(
                    session, source.id, {"config": config}, owner_id=None, secret_key=secret_key
                )
        for entity in DEMO_ENTITIES:
            if await get_entity_by_name(session, str(entity["name"])) is None:
                await create_entity(session, **entity)  # type: ignore[arg-type]
    return DemoSetup(admin_password=password, sources=len(DEMO_FEEDS))
