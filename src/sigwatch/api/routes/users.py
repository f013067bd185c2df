"""User management, for admins only: create, list, change role or password, unlock, deactivate.

A password set here retires every token the user held, as a change of one's own does.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from sigwatch import auth
from sigwatch.api import login_guard
from sigwatch.api.deps import AdminPrincipal, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    PageOut,
    UnlockOut,
    UserCreate,
    UserOut,
    UserUpdate,
    page_out,
)
from sigwatch.db import users
from sigwatch.db.audit import record_audit, snapshot

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=MAX_INT32)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, admin: AdminPrincipal, session: SessionDep) -> UserOut:
    """Add a user who can then sign in."""
    password_hash = await asyncio.to_thread(auth.hash_password, body.password)
    user = await users.create_user(
        session, username=body.username, password_hash=password_hash, role=body.role
    )
    await record_audit(session, admin.user, "create", "user", user.id, None, snapshot(user))
    await session.commit()
    return UserOut.model_validate(user)


@router.get("")
async def list_users(
    _admin: AdminPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[UserOut]:
    """Every user, in the order they were created."""
    page = await users.list_users(session, cursor=cursor, limit=limit)
    return page_out(page, UserOut.model_validate)


@router.get("/{user_id}")
async def get_user(user_id: UserId, _admin: AdminPrincipal, session: SessionDep) -> UserOut:
    """One user."""
    return UserOut.model_validate(await users.get_user(session, user_id))


@router.patch("/{user_id}")
async def update_user(
    user_id: UserId, body: UserUpdate, admin: AdminPrincipal, session: SessionDep
) -> UserOut:
    """Change a user's role, active flag or password; the last active admin cannot lose the role."""
    user = await users.get_user(session, user_id)
    before = snapshot(user)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"password"})
    if body.password is not None:
        changes["password_hash"] = await asyncio.to_thread(auth.hash_password, body.password)
    user = await users.update_user(session, user_id, changes)
    after = snapshot(user)
    if "password_hash" in changes:
        # The hash itself is never audited; that it changed is.
        after["password_changed"] = True
    await record_audit(session, admin.user, "update", "user", user.id, before, after)
    if "password_hash" in changes:
        # A new password set by an admin is meant to be used now, even after a lockout.
        await login_guard.unlock_account(session, admin.user, user)
    await session.commit()
    return UserOut.model_validate(user)


@router.post("/{user_id}/unlock")
async def unlock_user(user_id: UserId, admin: AdminPrincipal, session: SessionDep) -> UnlockOut:
    """Lift a user's sign-in lock and forget their failed attempts (client addresses stay)."""
    user = await users.get_user(session, user_id)
    unlocked = await login_guard.unlock_account(session, admin.user, user)
    await session.commit()
    return UnlockOut(user=UserOut.model_validate(user), unlocked=unlocked)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_user(user_id: UserId, admin: AdminPrincipal, session: SessionDep) -> None:
    """Deactivate a user: their tokens and keys stop working; their sources and history stay."""
    user = await users.get_user(session, user_id)
    before = snapshot(user)
    user = await users.update_user(session, user_id, {"is_active": False})
    await record_audit(session, admin.user, "deactivate", "user", user.id, before, snapshot(user))
    await session.commit()
