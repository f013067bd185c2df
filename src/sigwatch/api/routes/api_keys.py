"""API keys: create (the key is shown once), list, read and revoke; own keys, or all for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from sigwatch import auth
from sigwatch.api.deps import CurrentPrincipal, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    PageOut,
    page_out,
)
from sigwatch.db import api_keys, users
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix=f"{API_PREFIX}/api-keys", tags=["api keys"])

KeyId = Annotated[int, Path(ge=1, le=MAX_INT32)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, session: SessionDep
) -> ApiKeyCreated:
    """Make an API key; the response holds the key itself, which cannot be read again."""
    user_id = body.user_id or principal.user.id
    if user_id != principal.user.id:
        if not principal.is_admin:
            raise Forbidden("only admins make API keys for other users: leave user_id out")
        try:
            await users.get_user(session, user_id)
        except NotFound as exc:
            raise InvalidInput("user_id", str(exc)) from None
    new = auth.generate_api_key()
    key = await api_keys.create_api_key(
        session, user_id=user_id, name=body.name, prefix=new.prefix, key_hash=new.key_hash
    )
    await record_audit(session, principal.user, "create", "api_key", key.id, None, snapshot(key))
    await session.commit()
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=new.key)


@router.get("")
async def list_api_keys(
    principal: CurrentPrincipal,
    session: SessionDep,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[ApiKeyOut]:
    """Your keys, revoked ones included; admins see everyone's, or one user's with ``user_id``."""
    owner_id = principal.owner_filter if principal.owner_filter is not None else user_id
    page = await api_keys.list_api_keys(session, owner_id=owner_id, cursor=cursor, limit=limit)
    return page_out(page, ApiKeyOut.model_validate)


@router.get("/{key_id}")
async def get_api_key(key_id: KeyId, principal: CurrentPrincipal, session: SessionDep) -> ApiKeyOut:
    """One key, by id."""
    key = await api_keys.get_api_key(session, key_id, owner_id=principal.owner_filter)
    return ApiKeyOut.model_validate(key)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: KeyId, principal: CurrentPrincipal, session: SessionDep) -> None:
    """Revoke a key: it stops working at once and stays listed as revoked."""
    key = await api_keys.get_api_key(session, key_id, owner_id=principal.owner_filter)
    before = snapshot(key)
    key = await api_keys.revoke_api_key(session, key_id, owner_id=principal.owner_filter)
    await record_audit(session, principal.user, "revoke", "api_key", key.id, before, snapshot(key))
    await session.commit()
