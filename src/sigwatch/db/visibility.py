"""Who may see what: the one rule every read path applies to posts and what is derived from them.

A user sees what their own sources collected; an admin (viewer None) sees everything. An alert,
its title, counts, evidence, search matches, deliveries, live events, digests and exports are
all computed from the evidence that passes this rule for the viewer, or for a channel's owner.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Source, User


def source_visible_to(viewer_id: int | None) -> ColumnElement[bool]:
    """A condition on ``Source`` that holds for the sources ``viewer_id`` may see (None: all)."""
    if viewer_id is None:
        return true()
    return Source.owner_id == viewer_id


async def viewer_ids(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int | None]:
    """The viewer each user reads as: None for an active admin, their own id otherwise.

    What a channel sends is what its owner may see, so delivery asks this of channel owners.
    """
    wanted = set(user_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(User.id, User.role, User.is_active).where(User.id.in_(wanted))
    )
    admins = {user_id for user_id, role, active in rows.all() if role == "admin" and active}
    return {user_id: None if user_id in admins else user_id for user_id in wanted}
