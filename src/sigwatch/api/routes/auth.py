"""Sign-in: trade a username and password for tokens, renew them, and say who is signed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sigwatch import auth
from sigwatch.api import login_guard
from sigwatch.api.deps import CurrentPrincipal, Runtime, RuntimeDep, SessionDep, token_user
from sigwatch.api.login_guard import Attempt, LoginPolicy
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MeOut,
    PasswordChange,
    RefreshRequest,
    TokenPairOut,
    TokenRequest,
    UserOut,
)
from sigwatch.db import users
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import User
from sigwatch.errors import AuthError, InvalidInput

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


@router.post(
    "/token",
    openapi_extra=_TOKEN_BODY,
    responses={429: {"description": "Too many failed sign-ins: wait for Retry-After seconds."}},
)
async def issue_token(request: Request, runtime: RuntimeDep, session: SessionDep) -> TokenPairOut:
    """Sign in with username and password (OAuth2 password form, or JSON) for a token pair."""
    credentials = await _read_credentials(request)
    policy = LoginPolicy.from_settings(runtime.settings)
    attempt = Attempt(credentials.username, client_address(request), datetime.now(UTC))
    # Before any hashing: a throttled guess costs a read, not an argon2 verification.
    await login_guard.check_allowed(session, policy, attempt)
    user = await users.get_user_by_username(session, credentials.username)
    valid, new_hash = await _verify(credentials.password, user.password_hash if user else None)
    if user is None or not valid:
        refusal = await login_guard.record_failure(session, policy, attempt, user)
        await session.commit()
        if refusal is not None:
            raise refusal
        raise AuthError("incorrect username or password")
    await login_guard.record_success(session, attempt)
    if new_hash is not None:
        # The stored hash used older argon2 parameters; keep the stronger one now.
        await users.store_rehashed_password(session, user, new_hash)
    await session.commit()
    if not user.is_active:
        raise AuthError("this user is deactivated: ask an admin to reactivate it")
    return _token_pair(runtime, user)


@router.post("/refresh")
async def refresh_token(
    body: RefreshRequest, runtime: RuntimeDep, session: SessionDep
) -> TokenPairOut:
    """Trade a refresh token for a new token pair, with the user's current role."""
    claims = auth.decode_token(runtime.secret_key, body.refresh_token, expected_type="refresh")
    return _token_pair(runtime, await token_user(session, claims))


@router.post(
    "/password",
    responses={429: {"description": "Too many wrong passwords: wait for Retry-After seconds."}},
)
async def change_password(
    body: PasswordChange,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
) -> TokenPairOut:
    """Change one's own password; every token issued before stops working, a new pair is returned.

    API keys are not affected: revoke them separately if they may have leaked.
    """
    user = principal.user
    policy = LoginPolicy.from_settings(runtime.settings)
    attempt = Attempt(user.username, client_address(request), datetime.now(UTC))
    # A stolen token must not turn this into an unthrottled password oracle.
    await login_guard.check_allowed(session, policy, attempt)
    valid, _ = await _verify(body.old_password, user.password_hash)
    if not valid:
        refusal = await login_guard.record_failure(
            session, policy, attempt, user, via="password change"
        )
        await session.commit()
        if refusal is not None:
            raise refusal
        raise InvalidInput(
            "old_password",
            "is not the current password: check it, or ask an admin to set a new one",
        )
    if body.new_password == body.old_password:
        raise InvalidInput("new_password", "is the current password: choose a different one")
    before = snapshot(user)
    users.set_password_hash(user, await asyncio.to_thread(auth.hash_password, body.new_password))
    await login_guard.record_success(session, attempt)
    await session.flush()
    await record_audit(session, user, "password_change", "user", user.id, before, snapshot(user))
    await session.commit()
    return _token_pair(runtime, user)


@router.get("/me")
async def me(principal: CurrentPrincipal) -> MeOut:
    """The signed-in user and whether a token or an API key was used."""
    return MeOut(**UserOut.model_validate(principal.user).model_dump(), auth=principal.method)


def client_address(request: Request) -> str:
    """The address the request came from, as the server saw it (behind a proxy: see uvicorn's
    ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


async def _verify(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    # Hashing takes tens of milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(auth.verify_password, password, password_hash)


def _token_pair(runtime: Runtime, user: User) -> TokenPairOut:
    pair = auth.issue_token_pair(
        runtime.secret_key,
        user_id=user.id,
        role=user.role,
        access_ttl_s=runtime.settings.access_token_ttl_s,
        refresh_ttl_s=runtime.settings.refresh_token_ttl_s,
        token_version=user.token_version,
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
