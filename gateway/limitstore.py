"""Where limit counters live: process memory, or Redis shared by every Keygate process.

Both stores implement the same two atomic operations (see :mod:`gateway.limits`): ``admit``
checks every limit of every scope of a request — the key's and, for a key in a team, the
team's — and reserves what the request needs in all of them, or changes nothing and says which
limit of which scope refused; ``settle`` charges the actual usage to each and releases the
reservations.

Redis runs each operation as one Lua script, so concurrent requests in many processes see one
consistent count, with Redis's clock for the buckets. **If Redis is unreachable** the store
falls back to its in-memory twin (logged, counted in metrics) and keeps serving: limits then
hold per process until Redis answers again. We chose availability over failing closed because
the database stays the source of truth for keys and budgets (budgets are re-seeded from usage
records), so the degradation is bounded to "N processes × the limit" for the outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

if TYPE_CHECKING:
    from gateway.limits import Budget

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scope:
    """One holder of limits in an admission: a key, or the team it belongs to.

    ``slot`` groups the counters a single admission touches (the team's id for a team's key,
    else the key's) so that on Redis they share one hash slot (Redis Cluster runs a script only
    over keys of one slot). Counters are named by ``kind`` and ``id``.
    """

    kind: str  # "key" or "team"
    id: int
    rpm: int = 0
    tpm: int = 0
    max_parallel: int = 0
    budget: Budget | None = None
    slot: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind[0]}{self.id}"


class LimitStore(Protocol):
    async def admit(self, scopes: Sequence[Scope]) -> dict: ...

    async def settle(self, scopes: Sequence[Scope], *, tokens: int, actual_cost: float) -> None: ...

    async def budget_seeded(self, scope: Scope) -> bool: ...

    async def seed_budget(self, scope: Scope, tokens: int, cost: float) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class _BudgetCounter:
    spent_tokens: float = 0.0
    spent_cost: float = 0.0
    reserved_tokens: float = 0.0
    reserved_cost: float = 0.0


class MemoryLimitStore:
    """Counters for one process. Everything runs on one event loop, so each call is atomic."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._parallel: dict[str, int] = {}
        self._budgets: dict[tuple[str, str], _BudgetCounter] = {}

    def _level(self, key: tuple[str, str], limit: int, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(limit)
        return min(float(limit), bucket.tokens + (now - bucket.stamp) * limit / 60.0)

    def _refusal(self, scope: Scope, now: float) -> tuple[dict[str, float], str]:
        """What ``scope``'s buckets hold now, and the limit that refuses the request ("" if none)."""
        name = scope.name
        requests = self._level((name, "r"), scope.rpm, now) if scope.rpm else -1.0
        tokens = self._level((name, "t"), scope.tpm, now) if scope.tpm else -1.0
        levels = {"requests_remaining": requests, "tokens_remaining": tokens}
        if scope.rpm and requests < 1:
            return levels, "requests"
        if scope.tpm and tokens <= 0:
            return levels, "tokens"
        if scope.max_parallel and self._parallel.get(name, 0) >= scope.max_parallel:
            return levels, "parallel"
        budget = scope.budget
        if budget is not None:
            counter = self._budgets.get((name, budget.period_key)) or _BudgetCounter()
            if budget.limit_tokens and (
                counter.spent_tokens + counter.reserved_tokens + budget.estimate_tokens > budget.limit_tokens
            ):
                return levels, "budget_tokens"
            if (
                budget.limit_cost
                and counter.spent_cost + counter.reserved_cost + budget.estimate_cost > budget.limit_cost
            ):
                return levels, "budget_usd"
        return levels, ""

    async def admit(self, scopes: Sequence[Scope]) -> dict:
        """Check every scope's limits; reserve in all of them only if all pass (else change nothing)."""
        now = time.monotonic()
        levels: list[dict[str, float]] = []
        for index, scope in enumerate(scopes):
            scope_levels, refused = self._refusal(scope, now)
            levels.append(scope_levels)
            if refused:
                return {"scopes": levels, "refused": refused, "scope": index}
        for scope, scope_levels in zip(scopes, levels, strict=True):
            name = scope.name
            if scope.budget is not None:
                counter = self._budgets.setdefault((name, scope.budget.period_key), _BudgetCounter())
                counter.reserved_tokens += scope.budget.estimate_tokens
                counter.reserved_cost += scope.budget.estimate_cost
            if scope.rpm:
                scope_levels["requests_remaining"] -= 1
                self._buckets[(name, "r")] = _Bucket(scope_levels["requests_remaining"], now)
            if scope.tpm:
                self._buckets[(name, "t")] = _Bucket(scope_levels["tokens_remaining"], now)
            if scope.max_parallel:
                self._parallel[name] = self._parallel.get(name, 0) + 1
        return {"scopes": levels}

    async def settle(self, scopes: Sequence[Scope], *, tokens: int, actual_cost: float) -> None:
        """Charge the actual usage to every scope, release its parallel slot and reservation."""
        now = time.monotonic()
        for scope in scopes:
            name = scope.name
            if scope.tpm and tokens:
                self._buckets[(name, "t")] = _Bucket(self._level((name, "t"), scope.tpm, now) - tokens, now)
            if scope.max_parallel:
                self._parallel[name] = max(0, self._parallel.get(name, 0) - 1)
            budget = scope.budget
            if budget is not None:
                counter = self._budgets.setdefault((name, budget.period_key), _BudgetCounter())
                counter.reserved_tokens = max(0.0, counter.reserved_tokens - budget.estimate_tokens)
                counter.reserved_cost = max(0.0, counter.reserved_cost - budget.estimate_cost)
                counter.spent_tokens += tokens
                counter.spent_cost += actual_cost

    async def budget_seeded(self, scope: Scope) -> bool:
        assert scope.budget is not None
        return (scope.name, scope.budget.period_key) in self._budgets

    async def seed_budget(self, scope: Scope, tokens: int, cost: float) -> None:
        assert scope.budget is not None
        self._budgets.setdefault(
            (scope.name, scope.budget.period_key), _BudgetCounter(spent_tokens=tokens, spent_cost=cost)
        )


_LUA_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, limit)
  local v = redis.call('HMGET', key, 'tok', 'ts')
  local tok, ts = tonumber(v[1]), tonumber(v[2])
  if tok == nil then return limit end
  return math.min(limit, tok + (now - ts) * limit / 60.0)
end
"""

# One admission over N scopes (a key, and its team): KEYS has 4 per scope (requests bucket,
# tokens bucket, parallel counter, budget hash), ARGV 9 per scope (rpm, tpm, max_parallel,
# has_budget, limit_tokens, limit_cost, estimate_tokens, estimate_cost, ttl). Every scope is
# checked first; only when all pass is anything reserved — one script, so atomic across processes.
# Returns {refused limit or '', refusing scope index (1-based, 0 if none), r1, k1, r2, k2, …}.
_ADMIT = (
    _LUA_PRELUDE
    + """
local n = #KEYS / 4
local levels = {}
for i = 1, n do
  local a, kb = (i - 1) * 9, (i - 1) * 4
  local rpm, tpm, maxpar = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local r, k = -1, -1
  if rpm > 0 then r = level(KEYS[kb + 1], rpm) end
  if tpm > 0 then k = level(KEYS[kb + 2], tpm) end
  levels[2 * i - 1], levels[2 * i] = r, k
  local refused = ''
  if rpm > 0 and r < 1 then refused = 'requests'
  elseif tpm > 0 and k <= 0 then refused = 'tokens'
  elseif maxpar > 0 and tonumber(redis.call('GET', KEYS[kb + 3]) or '0') >= maxpar then refused = 'parallel'
  elseif tonumber(ARGV[a + 4]) == 1 then
    local b = redis.call('HMGET', KEYS[kb + 4], 'st', 'sc', 'rt', 'rc')
    local st, sc = tonumber(b[1] or '0'), tonumber(b[2] or '0')
    local rt, rc = tonumber(b[3] or '0'), tonumber(b[4] or '0')
    local lt, lc = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
    local et, ec = tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
    if lt > 0 and st + rt + et > lt then refused = 'budget_tokens'
    elseif lc > 0 and sc + rc + ec > lc then refused = 'budget_usd' end
  end
  if refused ~= '' then
    local out = {refused, tostring(i)}
    for j = 1, 2 * i do out[#out + 1] = tostring(levels[j]) end
    return out
  end
end
local out = {'', '0'}
for i = 1, n do
  local a, kb = (i - 1) * 9, (i - 1) * 4
  local rpm, tpm, maxpar = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local r, k = levels[2 * i - 1], levels[2 * i]
  if tonumber(ARGV[a + 4]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[kb + 4], 'rt', ARGV[a + 7])
    redis.call('HINCRBYFLOAT', KEYS[kb + 4], 'rc', ARGV[a + 8])
    if tonumber(ARGV[a + 9]) > 0 then redis.call('EXPIRE', KEYS[kb + 4], tonumber(ARGV[a + 9])) end
  end
  if rpm > 0 then
    r = r - 1
    redis.call('HSET', KEYS[kb + 1], 'tok', r, 'ts', now)
    redis.call('EXPIRE', KEYS[kb + 1], 120)
  end
  if tpm > 0 then
    redis.call('HSET', KEYS[kb + 2], 'tok', k, 'ts', now)
    redis.call('EXPIRE', KEYS[kb + 2], 120)
  end
  if maxpar > 0 then
    redis.call('INCR', KEYS[kb + 3])
    redis.call('EXPIRE', KEYS[kb + 3], 900)
  end
  out[#out + 1], out[#out + 2] = tostring(r), tostring(k)
end
return out
"""
)

# Settle over N scopes: KEYS 3 per scope (tokens bucket, parallel counter, budget hash), ARGV 2
# (tokens used, actual cost) then 6 per scope (tpm, release_parallel, has_budget, estimate_tokens,
# estimate_cost, ttl).
_SETTLE = (
    _LUA_PRELUDE
    + """
local used, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS / 3 do
  local a, kb = 2 + (i - 1) * 6, (i - 1) * 3
  local tpm = tonumber(ARGV[a + 1])
  if tpm > 0 and used > 0 then
    redis.call('HSET', KEYS[kb + 1], 'tok', level(KEYS[kb + 1], tpm) - used, 'ts', now)
    redis.call('EXPIRE', KEYS[kb + 1], 120)
  end
  if tonumber(ARGV[a + 2]) == 1 and tonumber(redis.call('DECR', KEYS[kb + 2])) < 0 then
    redis.call('SET', KEYS[kb + 2], 0)
  end
  if tonumber(ARGV[a + 3]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[kb + 3], 'rt', -tonumber(ARGV[a + 4]))
    redis.call('HINCRBYFLOAT', KEYS[kb + 3], 'rc', -tonumber(ARGV[a + 5]))
    redis.call('HINCRBYFLOAT', KEYS[kb + 3], 'st', used)
    redis.call('HINCRBYFLOAT', KEYS[kb + 3], 'sc', cost)
    if tonumber(ARGV[a + 6]) > 0 then redis.call('EXPIRE', KEYS[kb + 3], tonumber(ARGV[a + 6])) end
  end
end
return 1
"""
)

# KEYS: budget hash; ARGV: tokens, cost, ttl. Seeds spent amounts only where absent.
_SEED = """
redis.call('HSETNX', KEYS[1], 'st', ARGV[1])
redis.call('HSETNX', KEYS[1], 'sc', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return 1
"""


def _keys(scope: Scope) -> tuple[str, str, str, str]:
    # One hash slot per admission (Redis Cluster friendly): the team's for a team's key.
    base = f"{settings.KEYGATE_REDIS_NAMESPACE}:lim:{{{scope.slot or scope.name}}}:{scope.name}"
    period_key = scope.budget.period_key if scope.budget else ""
    return f"{base}:r", f"{base}:t", f"{base}:p", f"{base}:b:{period_key}"


class RedisLimitStore:
    """Counters shared by every process through Redis; falls back to memory if Redis fails."""

    def __init__(self, client: Any, *, on_error: Any = None) -> None:
        self._redis = client
        self._admit = client.register_script(_ADMIT)
        self._settle = client.register_script(_SETTLE)
        self._seed = client.register_script(_SEED)
        self._fallback = MemoryLimitStore()
        self._on_error = on_error
        self._last_warning = 0.0

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.error(
                "Redis is unavailable for limits (%s); enforcing limits per process until it returns",
                type(error).__name__,
            )
        if self._on_error is not None:
            self._on_error()

    async def admit(self, scopes: Sequence[Scope]) -> dict:
        keys: list[str] = []
        args: list[Any] = []
        for scope in scopes:
            keys += _keys(scope)
            budget = scope.budget
            args += [scope.rpm, scope.tpm, scope.max_parallel, 1 if budget else 0]
            args += (
                [budget.limit_tokens, budget.limit_cost, budget.estimate_tokens, budget.estimate_cost, budget.ttl]
                if budget
                else [0] * 5
            )
        try:
            reply = await self._admit(keys=keys, args=args)
        except Exception as error:  # redis errors of every kind: serve on, per process
            self._failed(error)
            return await self._fallback.admit(scopes)
        refused = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        levels = [float(v) for v in reply[2:]]
        result: dict[str, Any] = {
            "scopes": [
                {"requests_remaining": levels[i], "tokens_remaining": levels[i + 1]} for i in range(0, len(levels), 2)
            ]
        }
        if refused:
            result["refused"] = refused
            result["scope"] = int(reply[1]) - 1
        return result

    async def settle(self, scopes: Sequence[Scope], *, tokens: int, actual_cost: float) -> None:
        keys: list[str] = []
        args: list[Any] = [tokens, actual_cost]
        for scope in scopes:
            keys += _keys(scope)[1:]
            budget = scope.budget
            args += [scope.tpm, 1 if scope.max_parallel else 0, 1 if budget else 0]
            args += [budget.estimate_tokens, budget.estimate_cost, budget.ttl] if budget else [0] * 3
        try:
            await self._settle(keys=keys, args=args)
        except Exception as error:
            self._failed(error)
            await self._fallback.settle(scopes, tokens=tokens, actual_cost=actual_cost)

    async def budget_seeded(self, scope: Scope) -> bool:
        try:
            return bool(await self._redis.hexists(_keys(scope)[3], "st"))
        except Exception as error:
            self._failed(error)
            return await self._fallback.budget_seeded(scope)

    async def seed_budget(self, scope: Scope, tokens: int, cost: float) -> None:
        assert scope.budget is not None
        try:
            await self._seed(keys=[_keys(scope)[3]], args=[tokens, cost, scope.budget.ttl])
        except Exception as error:
            self._failed(error)
        await self._fallback.seed_budget(scope, tokens, cost)
