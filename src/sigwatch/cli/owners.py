"""Whom a command acts for: ``--user NAME``, or else the one admin of this installation.

The command line is the operator's tool on the local database, so where the API takes the
caller as the owner (of a channel, a subscription), a command takes ``--user`` and, left out,
the single active admin; with none or several it stops and says which users exist.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import User
from sigwatch.db.users import get_user_by_username, list_users
from sigwatch.errors import NotFound

NO_SUCH_USER = "no user {name!r}: check the spelling, or create it with `sigwatch user create`"


async def user_named(session: AsyncSession, name: str) -> User:
    """The user called ``name``; NotFound saying how to create one otherwise."""
    user = await get_user_by_username(session, name)
    if user is None:
        raise NotFound(NO_SUCH_USER.format(name=name))
    return user


async def owner_for(session: AsyncSession, name: str | None) -> User:
    """The user ``--user`` names, or the only active admin when it was left out."""
    if name is not None:
        return await user_named(session, name)
    users = await _all_users(session)
    admins = [user for user in users if user.role == "admin" and user.is_active]
    if len(admins) == 1:
        return admins[0]
    if not users:
        raise NotFound(
            "there are no users yet: create the admin with "
            "`sigwatch user create NAME --admin`, then run this again"
        )
    names = ", ".join(f"{user.username} ({user.role})" for user in users)
    if not admins:
        raise NotFound(f"there is no active admin to act for: say which user with --user ({names})")
    raise NotFound(f"there are several admins: say which with --user ({names})")


async def _all_users(session: AsyncSession) -> list[User]:
    users: list[User] = []
    cursor: str | None = None
    while True:
        page = await list_users(session, cursor=cursor, limit=200)
        users.extend(page.items)
        if page.next_cursor is None:
            return users
        cursor = page.next_cursor


async def all_usernames(session: AsyncSession) -> dict[int | None, str]:
    """Every user's name by id, for listings that show owners."""
    return {user.id: user.username for user in await _all_users(session)}
