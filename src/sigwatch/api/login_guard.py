"""Password guessing defence: backoff, then a temporary lock, per account and per client address.

How it behaves (also in docs/api.md):

- Each failed password check counts against the account tried (by username, whether or not it
  exists, so answers do not reveal which usernames exist) and against the client address.
- From ``*_backoff_after`` failures on, the next attempt must wait ``backoff_base_s``, doubling
  with each further failure up to ``backoff_max_s``. At ``*_lock_after`` failures, password
  sign-in is locked for ``login_lock_s``.
- A refused attempt is answered 429 with ``Retry-After`` *before* any password is hashed, is not
  counted and does not extend a lock. A lock ends by itself after ``login_lock_s`` and its count
  starts again from zero; an admin can lift an account's lock earlier.
- A successful sign-in clears the account's count (not the address's: one's own account must not
  reset a guessing address). Failures are forgotten after ``login_failure_window_s`` of quiet.
- A lock stops password sign-in only: tokens already issued and API keys keep working, so an
  attacker can at worst keep one account's password sign-in locked by failing again after each
  lock period, from addresses that are themselves limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.api.ratelimit import TooManyRequests, retry_after_header
from sigwatch.config import Settings
from sigwatch.db import login_throttles
from sigwatch.db.audit import record_audit
from sigwatch.db.login_throttles import throttle_key
from sigwatch.db.models import LoginThrottle, User


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Thresholds of the login guard, from the ``SIGWATCH_LOGIN_*`` settings."""

    account_backoff_after: int
    account_lock_after: int
    ip_backoff_after: int
    ip_lock_after: int
    backoff_base_s: float
    backoff_max_s: float
    lock_s: int
    failure_window_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        """The policy the settings describe."""
        return cls(
            account_backoff_after=settings.login_account_backoff_after,
            account_lock_after=settings.login_account_lock_after,
            ip_backoff_after=settings.login_ip_backoff_after,
            ip_lock_after=settings.login_ip_lock_after,
            backoff_base_s=settings.login_backoff_base_s,
            backoff_max_s=settings.login_backoff_max_s,
            lock_s=settings.login_lock_s,
            failure_window_s=settings.login_failure_window_s,
        )

    def thresholds(self, scope: str) -> tuple[int, int]:
        """Failures before backoff starts and failures that lock, for ``account`` or ``ip``."""
        if scope == "account":
            return self.account_backoff_after, self.account_lock_after
        return self.ip_backoff_after, self.ip_lock_after

    def backoff_s(self, scope: str, failures: int) -> float:
        """How long after the last of ``failures`` failures the next attempt must wait."""
        backoff_after, _ = self.thresholds(scope)
        if failures < backoff_after:
            return 0.0
        return min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (failures - backoff_after))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt: the username tried, the client address, and when."""

    username: str
    ip: str
    now: datetime

    @property
    def keys(self) -> list[tuple[str, str]]:
        """The ``(scope, key)`` rows this attempt counts against."""
        return [("account", throttle_key(self.username)), ("ip", throttle_key(self.ip))]


async def check_allowed(session: AsyncSession, policy: LoginPolicy, attempt: Attempt) -> None:
    """Raise TooManyRequests when the account or the address must wait; reads only."""
    rows = await login_throttles.get_throttles(session, attempt.keys)
    refusals = [
        refusal
        for key in attempt.keys
        if key in rows
        and (refusal := _refusal(policy, rows[key], attempt, newly_locked=False)) is not None
    ]
    if refusals:
        raise max(refusals, key=lambda refusal: refusal.retry_after_s)


async def record_failure(
    session: AsyncSession,
    policy: LoginPolicy,
    attempt: Attempt,
    user: User | None,
    *,
    via: str = "sign-in",
) -> TooManyRequests | None:
    """Count a wrong password, lock what reached its threshold, audit both; the lock's error."""
    now = attempt.now
    forget_before = now - timedelta(seconds=policy.failure_window_s)
    await login_throttles.delete_stale(session, now=now, forget_before=forget_before)
    actor = f"ip:{attempt.ip}"
    object_type, object_id = _audit_object(attempt, user)
    counts: dict[str, int] = {}
    refusal: TooManyRequests | None = None
    for scope, key in attempt.keys:
        counts[scope] = await login_throttles.record_failure(
            session, scope, key, now=now, forget_before=forget_before
        )
        if counts[scope] < policy.thresholds(scope)[1]:
            continue
        until = now + timedelta(seconds=policy.lock_s)
        if await login_throttles.lock(session, scope, key, now=now, until=until):
            locked = LoginThrottle(
                scope=scope,
                key=key,
                failures=counts[scope],
                last_failure_at=now,
                locked_until=until,
            )
            refusal = _refusal(policy, locked, attempt, newly_locked=True)
            locked_type, locked_id = (
                (object_type, object_id) if scope == "account" else ("ip", attempt.ip[:64])
            )
            await record_audit(
                session,
                actor,
                "login_locked",
                locked_type,
                locked_id,
                None,
                {"scope": scope, "failures": counts[scope], "locked_until": until},
            )
    await record_audit(
        session,
        actor,
        "login_failed",
        object_type,
        object_id,
        None,
        {
            "username": attempt.username[:64],
            "ip": attempt.ip,
            "via": via,
            "account_failures": counts["account"],
            "ip_failures": counts["ip"],
        },
    )
    return refusal


async def record_success(session: AsyncSession, attempt: Attempt) -> None:
    """Forget the account's failures after a right password (the address's count stays)."""
    await login_throttles.clear(session, "account", throttle_key(attempt.username))


async def unlock_account(session: AsyncSession, actor: User | str, user: User) -> bool:
    """Lift ``user``'s lock and forget its failures, audited; True if there was anything to lift."""
    row = await login_throttles.clear(session, "account", throttle_key(user.username))
    if row is None:
        return False
    before = {"failures": row.failures, "locked_until": row.locked_until}
    await record_audit(session, actor, "login_unlocked", "user", user.id, before, None)
    return True


def _audit_object(attempt: Attempt, user: User | None) -> tuple[str, str]:
    # Failures for usernames nobody has are kept too, under the name tried.
    if user is not None:
        return "user", str(user.id)
    return "login", attempt.username[:64]


def _refusal(
    policy: LoginPolicy, row: LoginThrottle, attempt: Attempt, *, newly_locked: bool
) -> TooManyRequests | None:
    now = attempt.now
    if row.locked_until is not None:
        if row.locked_until <= now:
            return None  # the lock ran out: its count is forgiven
        wait = (row.locked_until - now).total_seconds()
        return TooManyRequests(
            _locked_message(row, attempt, wait, newly_locked), retry_after_s=wait
        )
    if row.last_failure_at <= now - timedelta(seconds=policy.failure_window_s):
        return None
    wait = policy.backoff_s(row.scope, row.failures) - (now - row.last_failure_at).total_seconds()
    if wait <= 0:
        return None
    where = "this account" if row.scope == "account" else f"your address ({attempt.ip})"
    return TooManyRequests(
        f"too many failed sign-ins for {where}: wait {retry_after_header(wait)} s before the "
        "next attempt (see Retry-After), and check the username and password",
        retry_after_s=wait,
    )


def _locked_message(row: LoginThrottle, attempt: Attempt, wait: float, newly_locked: bool) -> str:
    seconds = retry_after_header(wait)
    lead = "incorrect username or password, and " if newly_locked else ""
    if row.scope == "account":
        return (
            f"{lead}password sign-in to this account is locked for {seconds} s after "
            f"{row.failures} failed attempts. Wait and try again, sign in with an API key, or "
            "ask an admin to unlock it (POST /api/v1/users/{id}/unlock or "
            f"`sigwatch user unlock {attempt.username[:64]}`)"
        )
    return (
        f"{lead}password sign-in from your address ({attempt.ip}) is locked for {seconds} s "
        f"after {row.failures} failed attempts. Wait, then check the username and password"
    )
