"""Users: the people who sign in, their role and whether they may still do so.

Passwords arrive here already hashed (``sigwatch.auth.hash_password``); this module never sees
one in clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import User
from sigwatch.db.pagination import (
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.errors import Conflict, InvalidInput

ROLES = ("admin", "user")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_UPDATABLE = frozenset({"role", "is_active", "password_hash"})


def check_username(username: str) -> str:
    """Return ``username`` if usable, or raise InvalidInput saying which characters are allowed."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "username",
            "use 1 to 64 letters, digits and . _ @ -, starting with a letter or digit",
        )
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    return role


async def create_user(
    session: AsyncSession, *, username: str, password_hash: str, role: str = "user"
) -> User:
    """Add a user; Conflict when the username (compared without case) is taken."""
    check_username(username)
    _check_role(role)
    if await get_user_by_username(session, username) is not None:
        raise Conflict(f"username {username!r} is taken: choose another")
    user = User(username=username, password_hash=password_hash, role=role, is_active=True)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        # Another request took the name between the check and the insert.
        raise Conflict(f"username {username!r} is taken: choose another") from None
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The user with this id, or NotFound."""
    return await get_visible(session, User, user_id, "user")


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    """The user with this username, compared without case, or None."""
    stmt = select(User).where(func.lower(User.username) == username.lower())
    return (await session.scalars(stmt)).first()


async def count_users(session: AsyncSession) -> int:
    """How many users exist, active or not."""
    return await session.scalar(select(func.count()).select_from(User)) or 0


async def list_users(
    session: AsyncSession, *, cursor: str | None = None, limit: int = 50
) -> Page[User]:
    """Users in the order they were created."""
    check_limit(limit)
    stmt = select(User).order_by(User.id).limit(limit + 1)
    if cursor is not None:
        stmt = stmt.where(User.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def update_user(session: AsyncSession, user_id: int, changes: Mapping[str, Any]) -> User:
    """Change ``role``, ``is_active`` or ``password_hash``; the last active admin stays one."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    user = await get_user(session, user_id)
    if "role" in changes:
        _check_role(changes["role"])
    demoted = changes.get("role", user.role) != "admin"
    deactivated = changes.get("is_active") is False
    if (
        user.role == "admin"
        and user.is_active
        and (demoted or deactivated)
        and await _other_active_admins(session, user.id) == 0
    ):
        raise Conflict(f"{user.username} is the last active admin: make another user admin first")
    for name, value in changes.items():
        if name == "password_hash":
            set_password_hash(user, value)
        else:
            setattr(user, name, value)
    await session.flush()
    return user


def set_password_hash(user: User, password_hash: str, *, now: datetime | None = None) -> None:
    """Give ``user`` a new password: every token signed before now stops working."""
    user.password_hash = password_hash
    user.token_version = (user.token_version or 0) + 1
    user.password_changed_at = now or datetime.now(UTC)


async def store_rehashed_password(session: AsyncSession, user: User, password_hash: str) -> None:
    """Keep a stronger hash of the same password; unlike a change, tokens stay valid."""
    user.password_hash = password_hash
    await session.flush()


async def delete_user(session: AsyncSession, user_id: int) -> User:
    """Remove a user; their sources stay, ownerless. Returns the removed user."""
    user = await get_user(session, user_id)
    if (
        user.role == "admin"
        and user.is_active
        and await _other_active_admins(session, user_id) == 0
    ):
        raise Conflict(f"{user.username} is the last active admin: make another user admin first")
    await session.delete(user)
    await session.flush()
    return user


async def _other_active_admins(session: AsyncSession, user_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.is_active.is_(True), User.id != user_id)
    )
    return int(await session.scalar(stmt) or 0)
