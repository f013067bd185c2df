"""Circuit breakers per host: closed, open, half-open; in process memory or in Redis.

- **closed**: requests go through. Each transient failure (no answer, 5xx, 429 …) in a row
  counts; any healthy answer resets the count. At ``failures`` in a row the breaker opens.
- **open**: requests fail at once, without reaching the host, until ``open_s`` has passed.
- **half-open**: one trial request goes through; the others still fail at once. Its success
  closes the breaker; its failure opens it again for twice as long, up to ``max_open_s``. A
  trial that never reports (its worker died) lets another one through after ``trial_s``.

A breaker is named by a key (a host, in a key space such as ``source`` or ``delivery``). The
state is a small record (state, failures in a row, when it opened, how long it stays open,
when the trial started). :class:`MemoryBreakers` keeps it in this process; :class:`RedisBreakers`
keeps it in one Redis hash per key and changes it with Lua scripts, so every worker sharing the
Redis sees one breaker per host and two workers cannot both take the half-open trial.

Times are wall-clock seconds (``time.time()``) passed in by the caller, so Redis records
written by several machines compare; a clock skew of a second or two only shifts a retry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol, cast

from redis.asyncio import Redis

BreakerState = Literal["closed", "open", "half_open"]
STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")

#: Keys in Redis start with this, apart from anything else kept in the same database.
REDIS_KEY_PREFIX = "sigwatch:breaker"
#: An untouched breaker record expires from Redis after this long (it is closed by then).
REDIS_RECORD_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and for how long: validated by the settings that build it."""

    failures: int = 5
    open_s: float = 60.0
    max_open_s: float = 3600.0
    #: How long a half-open trial may take before another request may try instead.
    trial_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HostHealth:
    """One breaker's record: its state, failures in a row, and when it may be tried again."""

    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    open_s: float = 0.0
    trial_at: float = 0.0

    @property
    def retry_at(self) -> float | None:
        """When an open breaker lets a trial through (epoch seconds); None unless open."""
        return self.opened_at + self.open_s if self.state == "open" else None


@dataclass(frozen=True, slots=True)
class Admission:
    """The breaker's answer before a request: go ahead, or wait ``wait_s`` seconds."""

    allowed: bool
    health: HostHealth
    wait_s: float = 0.0


def admit(health: HostHealth, policy: BreakerPolicy, now: float) -> tuple[Admission, HostHealth]:
    """Whether a request may go now, and the record afterwards (a trial marks half-open)."""
    if health.state == "closed":
        return Admission(True, health), health
    if health.state == "open":
        retry_at = health.opened_at + health.open_s
        if now < retry_at:
            return Admission(False, health, retry_at - now), health
    elif now < health.trial_at + policy.trial_s:  # half-open with a trial still out
        return Admission(False, health, health.trial_at + policy.trial_s - now), health
    trial = replace(health, state="half_open", trial_at=now)
    return Admission(True, trial), trial


def record(health: HostHealth, policy: BreakerPolicy, *, ok: bool, now: float) -> HostHealth:
    """The record after a request's outcome: ``ok`` when the host answered sanely."""
    if ok:
        if health.state == "open":
            return health  # a request sent before the breaker opened proves nothing now
        return HostHealth()
    failures = health.failures + 1
    if health.state == "half_open":
        longer = min(policy.max_open_s, max(policy.open_s, health.open_s * 2))
        return HostHealth("open", failures, opened_at=now, open_s=longer)
    if health.state == "closed" and failures >= policy.failures:
        return HostHealth("open", failures, opened_at=now, open_s=policy.open_s)
    return replace(health, failures=failures)


class BreakerStore(Protocol):
    """Where breaker records live; every method is safe to call from many tasks at once."""

    async def admit(self, key: str, policy: BreakerPolicy, now: float) -> Admission:
        """Whether a request to ``key`` may go now (taking the half-open trial if due)."""
        ...

    async def record(self, key: str, policy: BreakerPolicy, *, ok: bool, now: float) -> HostHealth:
        """Record a request's outcome and return the breaker's record afterwards."""
        ...

    async def read(self, key: str) -> HostHealth:
        """The breaker's record (closed with no failures when it has none)."""
        ...


class MemoryBreakers:
    """Breaker records in this process (one event loop: each call runs without interleaving)."""

    def __init__(self) -> None:
        self._records: dict[str, HostHealth] = {}

    async def admit(self, key: str, policy: BreakerPolicy, now: float) -> Admission:
        """Whether a request to ``key`` may go now (taking the half-open trial if due)."""
        admission, after = admit(self._records.get(key, HostHealth()), policy, now)
        self._store(key, after)
        return admission

    async def record(self, key: str, policy: BreakerPolicy, *, ok: bool, now: float) -> HostHealth:
        """Record a request's outcome and return the breaker's record afterwards."""
        after = record(self._records.get(key, HostHealth()), policy, ok=ok, now=now)
        self._store(key, after)
        return after

    async def read(self, key: str) -> HostHealth:
        """The breaker's record (closed with no failures when it has none)."""
        return self._records.get(key, HostHealth())

    def _store(self, key: str, health: HostHealth) -> None:
        # A healthy closed breaker is the default: dropping it keeps the dict as small as the
        # set of hosts that are failing right now.
        if health == HostHealth():
            self._records.pop(key, None)
        else:
            self._records[key] = health


# Both scripts read the hash, apply the same rules as admit()/record() above, write it back and
# return the fields, so each change is one atomic step however many workers share the Redis.
_READ = """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at', 'open_s', 'trial_at')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0')
local opened_at = tonumber(h[3] or '0')
local open_s = tonumber(h[4] or '0')
local trial_at = tonumber(h[5] or '0')
"""
_WRITE = """
if state == 'closed' and failures == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'opened_at',
    tostring(opened_at), 'open_s', tostring(open_s), 'trial_at', tostring(trial_at))
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
end
return {allowed, state, failures, tostring(opened_at), tostring(open_s), tostring(trial_at)}
"""
# ARGV: now, failures threshold, open_s, max_open_s, record ttl, trial_s (admit) or ok (record)
_ADMIT_SCRIPT = (
    _READ
    + """
local now = tonumber(ARGV[1])
local trial_s = tonumber(ARGV[6])
local allowed = 1
if state == 'open' and now < opened_at + open_s then
  allowed = 0
elseif state == 'half_open' and now < trial_at + trial_s then
  allowed = 0
elseif state ~= 'closed' then
  state = 'half_open'
  trial_at = now
end
"""
    + _WRITE
)
_RECORD_SCRIPT = (
    _READ
    + """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local base_open_s = tonumber(ARGV[3])
local max_open_s = tonumber(ARGV[4])
local allowed = 1
if ARGV[6] == '1' then
  if state ~= 'open' then
    state = 'closed'; failures = 0; opened_at = 0; open_s = 0; trial_at = 0
  end
else
  failures = failures + 1
  if state == 'half_open' then
    state = 'open'; opened_at = now; trial_at = 0
    open_s = math.min(max_open_s, math.max(base_open_s, open_s * 2))
  elseif state == 'closed' and failures >= threshold then
    state = 'open'; opened_at = now; open_s = base_open_s
  end
end
"""
    + _WRITE
)


class RedisBreakers:
    """Breaker records shared by every process using this Redis: one hash per key."""

    def __init__(self, redis: Redis, *, key_prefix: str = REDIS_KEY_PREFIX) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._admit = redis.register_script(_ADMIT_SCRIPT)
        self._record = redis.register_script(_RECORD_SCRIPT)

    async def admit(self, key: str, policy: BreakerPolicy, now: float) -> Admission:
        """Whether a request to ``key`` may go now (taking the half-open trial if due)."""
        reply = await self._admit(
            keys=[self._key(key)], args=[*self._args(policy, now), repr(policy.trial_s)]
        )
        allowed, health = _from_reply(reply)
        wait_s = 0.0
        if not allowed:
            until = (
                health.opened_at + health.open_s
                if health.state == "open"
                else health.trial_at + policy.trial_s
            )
            wait_s = max(0.0, until - now)
        return Admission(allowed, health, wait_s)

    async def record(self, key: str, policy: BreakerPolicy, *, ok: bool, now: float) -> HostHealth:
        """Record a request's outcome and return the breaker's record afterwards."""
        reply = await self._record(
            keys=[self._key(key)], args=[*self._args(policy, now), "1" if ok else "0"]
        )
        return _from_reply(reply)[1]

    async def read(self, key: str) -> HostHealth:
        """The breaker's record (closed with no failures when it has none)."""
        fields = await self._redis.hgetall(self._key(key))
        if not fields:
            return HostHealth()
        text = {_text(name): _text(value) for name, value in fields.items()}
        return HostHealth(
            state=_state(text.get("state", "closed")),
            failures=int(text.get("failures", "0")),
            opened_at=float(text.get("opened_at", "0")),
            open_s=float(text.get("open_s", "0")),
            trial_at=float(text.get("trial_at", "0")),
        )

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    @staticmethod
    def _args(policy: BreakerPolicy, now: float) -> list[str | int]:
        return [
            repr(now),
            policy.failures,
            repr(policy.open_s),
            repr(policy.max_open_s),
            REDIS_RECORD_TTL_S,
        ]


def _from_reply(reply: object) -> tuple[bool, HostHealth]:
    allowed, state, failures, opened_at, open_s, trial_at = cast(list[object], reply)
    return bool(int(cast(int, allowed))), HostHealth(
        state=_state(_text(state)),
        failures=int(cast(int, failures)),
        opened_at=float(_text(opened_at)),
        open_s=float(_text(open_s)),
        trial_at=float(_text(trial_at)),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _state(value: str) -> BreakerState:
    for state in STATES:
        if value == state:
            return state
    return "closed"  # an unreadable record is treated as a healthy host
