"""Sign-in: trade a username and password for tokens, renew them, and say who is signed in."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sigwatch import auth
from sigwatch.api.deps import CurrentPrincipal, Runtime, RuntimeDep, SessionDep, active_user
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MeOut, RefreshRequest, TokenPairOut, TokenRequest, UserOut
from sigwatch.db import users
from sigwatch.db.models import User
from sigwatch.errors import AuthError

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TOKEN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {"schema": TokenRequest.model_json_schema()}
            for media_type in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


@router.post("/token", openapi_extra=_TOKEN_BODY)
async def issue_token(request: Request, runtime: RuntimeDep, session: SessionDep) -> TokenPairOut:
    """Sign in with username and password (OAuth2 password form, or JSON) for a token pair."""
    credentials = await _read_credentials(request)
    user = await users.get_user_by_username(session, credentials.username)
    # Hashing takes tens of milliseconds of CPU: keep it off the event loop.
    valid, new_hash = await asyncio.to_thread(
        auth.verify_password, credentials.password, user.password_hash if user else None
    )
    if user is None or not valid:
        raise AuthError("incorrect username or password")
    if not user.is_active:
        raise AuthError("this user is deactivated: ask an admin to reactivate it")
    if new_hash is not None:
        # The stored hash used older argon2 parameters; keep the stronger one now.
        await users.update_user(session, user.id, {"password_hash": new_hash})
        await session.commit()
    return _token_pair(runtime, user)


@router.post("/refresh")
async def refresh_token(
    body: RefreshRequest, runtime: RuntimeDep, session: SessionDep
) -> TokenPairOut:
    """Trade a refresh token for a new token pair, with the user's current role."""
    claims = auth.decode_token(runtime.secret_key, body.refresh_token, expected_type="refresh")
    return _token_pair(runtime, await active_user(session, claims.user_id))


@router.get("/me")
async def me(principal: CurrentPrincipal) -> MeOut:
    """The signed-in user and whether a token or an API key was used."""
    return MeOut(**UserOut.model_validate(principal.user).model_dump(), auth=principal.method)


def _token_pair(runtime: Runtime, user: User) -> TokenPairOut:
    pair = auth.issue_token_pair(
        runtime.secret_key,
        user_id=user.id,
        role=user.role,
        access_ttl_s=runtime.settings.access_token_ttl_s,
        refresh_ttl_s=runtime.settings.refresh_token_ttl_s,
    )
    return TokenPairOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


async def _read_credentials(request: Request) -> TokenRequest:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    if content_type in _FORM_TYPES:
        form = await request.form()
        data = {name: value for name, value in form.items() if isinstance(value, str)}
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = await request.json()
        except ValueError:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "the body is not valid JSON"}]
            ) from None
    else:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body",),
                    "msg": "send username and password as a form "
                    "(application/x-www-form-urlencoded) or as JSON",
                }
            ]
        )
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
