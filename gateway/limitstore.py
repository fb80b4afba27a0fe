"""Where limit counters live: process memory, or Redis shared by every Keygate process.

Both stores implement the same two atomic operations (see :mod:`gateway.limits`): ``admit``
checks every limit of a key and reserves what the request needs, or changes nothing and says
which limit refused; ``settle`` charges the actual usage and releases the reservation.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

if TYPE_CHECKING:
    from gateway.limits import Budget

log = logging.getLogger(__name__)


class LimitStore(Protocol):
    async def admit(self, *, key_id: int, rpm: int, tpm: int, max_parallel: int, budget: Budget | None) -> dict: ...

    async def settle(
        self,
        *,
        key_id: int,
        tpm: int,
        tokens: int,
        release_parallel: bool,
        budget: Budget | None,
        actual_cost: float,
    ) -> None: ...

    async def budget_seeded(self, key_id: int, period_key: str) -> bool: ...

    async def seed_budget(self, key_id: int, period_key: str, tokens: int, cost: float, ttl: int) -> None: ...


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
        self._buckets: dict[tuple[int, str], _Bucket] = {}
        self._parallel: dict[int, int] = {}
        self._budgets: dict[tuple[int, str], _BudgetCounter] = {}

    def _level(self, key: tuple[int, str], limit: int, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(limit)
        return min(float(limit), bucket.tokens + (now - bucket.stamp) * limit / 60.0)

    async def admit(self, *, key_id: int, rpm: int, tpm: int, max_parallel: int, budget: Budget | None) -> dict:
        now = time.monotonic()
        requests = self._level((key_id, "r"), rpm, now) if rpm else -1.0
        tokens = self._level((key_id, "t"), tpm, now) if tpm else -1.0
        result: dict[str, Any] = {"requests_remaining": requests, "tokens_remaining": tokens}
        if rpm and requests < 1:
            return {**result, "refused": "requests"}
        if tpm and tokens <= 0:
            return {**result, "refused": "tokens"}
        if max_parallel and self._parallel.get(key_id, 0) >= max_parallel:
            return {**result, "refused": "parallel"}
        if budget is not None:
            counter = self._budgets.setdefault((key_id, budget.period_key), _BudgetCounter())
            if budget.limit_tokens and (
                counter.spent_tokens + counter.reserved_tokens + budget.estimate_tokens > budget.limit_tokens
            ):
                return {**result, "refused": "budget_tokens"}
            if (
                budget.limit_cost
                and counter.spent_cost + counter.reserved_cost + budget.estimate_cost > budget.limit_cost
            ):
                return {**result, "refused": "budget_usd"}
            counter.reserved_tokens += budget.estimate_tokens
            counter.reserved_cost += budget.estimate_cost
        if rpm:
            self._buckets[(key_id, "r")] = _Bucket(requests - 1, now)
            result["requests_remaining"] = requests - 1
        if tpm:
            self._buckets[(key_id, "t")] = _Bucket(tokens, now)
        if max_parallel:
            self._parallel[key_id] = self._parallel.get(key_id, 0) + 1
        return result

    async def settle(
        self,
        *,
        key_id: int,
        tpm: int,
        tokens: int,
        release_parallel: bool,
        budget: Budget | None,
        actual_cost: float,
    ) -> None:
        now = time.monotonic()
        if tpm and tokens:
            self._buckets[(key_id, "t")] = _Bucket(self._level((key_id, "t"), tpm, now) - tokens, now)
        if release_parallel:
            self._parallel[key_id] = max(0, self._parallel.get(key_id, 0) - 1)
        if budget is not None:
            counter = self._budgets.setdefault((key_id, budget.period_key), _BudgetCounter())
            counter.reserved_tokens = max(0.0, counter.reserved_tokens - budget.estimate_tokens)
            counter.reserved_cost = max(0.0, counter.reserved_cost - budget.estimate_cost)
            counter.spent_tokens += tokens
            counter.spent_cost += actual_cost

    async def budget_seeded(self, key_id: int, period_key: str) -> bool:
        return (key_id, period_key) in self._budgets

    async def seed_budget(self, key_id: int, period_key: str, tokens: int, cost: float, ttl: int) -> None:
        self._budgets.setdefault((key_id, period_key), _BudgetCounter(spent_tokens=tokens, spent_cost=cost))


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

# KEYS: requests bucket, tokens bucket, parallel counter, budget hash
# ARGV: rpm, tpm, max_parallel, has_budget, limit_tokens, limit_cost, estimate_tokens, estimate_cost, ttl
_ADMIT = (
    _LUA_PRELUDE
    + """
local rpm, tpm, maxpar = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local has_budget = tonumber(ARGV[4])
local lt, lc = tonumber(ARGV[5]), tonumber(ARGV[6])
local et, ec, ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local r, k = -1, -1
if rpm > 0 then r = level(KEYS[1], rpm) end
if tpm > 0 then k = level(KEYS[2], tpm) end
if rpm > 0 and r < 1 then return {'requests', tostring(r), tostring(k)} end
if tpm > 0 and k <= 0 then return {'tokens', tostring(r), tostring(k)} end
if maxpar > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= maxpar then
  return {'parallel', tostring(r), tostring(k)}
end
if has_budget == 1 then
  local b = redis.call('HMGET', KEYS[4], 'st', 'sc', 'rt', 'rc')
  local st, sc, rt, rc = tonumber(b[1] or '0'), tonumber(b[2] or '0'), tonumber(b[3] or '0'), tonumber(b[4] or '0')
  if lt > 0 and st + rt + et > lt then return {'budget_tokens', tostring(r), tostring(k)} end
  if lc > 0 and sc + rc + ec > lc then return {'budget_usd', tostring(r), tostring(k)} end
  redis.call('HINCRBYFLOAT', KEYS[4], 'rt', et)
  redis.call('HINCRBYFLOAT', KEYS[4], 'rc', ec)
  if ttl > 0 then redis.call('EXPIRE', KEYS[4], ttl) end
end
if rpm > 0 then
  r = r - 1
  redis.call('HSET', KEYS[1], 'tok', r, 'ts', now)
  redis.call('EXPIRE', KEYS[1], 120)
end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'tok', k, 'ts', now)
  redis.call('EXPIRE', KEYS[2], 120)
end
if maxpar > 0 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 900)
end
return {'', tostring(r), tostring(k)}
"""
)

# KEYS: tokens bucket, parallel counter, budget hash
# ARGV: tpm, tokens, release_parallel, has_budget, estimate_tokens, estimate_cost, tokens, actual_cost, ttl
_SETTLE = (
    _LUA_PRELUDE
    + """
local tpm, used, release, has_budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tpm > 0 and used > 0 then
  redis.call('HSET', KEYS[1], 'tok', level(KEYS[1], tpm) - used, 'ts', now)
  redis.call('EXPIRE', KEYS[1], 120)
end
if release == 1 and tonumber(redis.call('DECR', KEYS[2])) < 0 then redis.call('SET', KEYS[2], 0) end
if has_budget == 1 then
  redis.call('HINCRBYFLOAT', KEYS[3], 'rt', -tonumber(ARGV[5]))
  redis.call('HINCRBYFLOAT', KEYS[3], 'rc', -tonumber(ARGV[6]))
  redis.call('HINCRBYFLOAT', KEYS[3], 'st', tonumber(ARGV[7]))
  redis.call('HINCRBYFLOAT', KEYS[3], 'sc', tonumber(ARGV[8]))
  if tonumber(ARGV[9]) > 0 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[9])) end
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


def _keys(key_id: int, period_key: str = "") -> tuple[str, str, str, str]:
    base = f"{settings.KEYGATE_REDIS_NAMESPACE}:lim:{{{key_id}}}"  # one hash slot per key (Redis Cluster friendly)
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

    async def admit(self, *, key_id: int, rpm: int, tpm: int, max_parallel: int, budget: Budget | None) -> dict:
        r, t, p, b = _keys(key_id, budget.period_key if budget else "")
        args = [rpm, tpm, max_parallel, 1 if budget else 0]
        args += (
            [budget.limit_tokens, budget.limit_cost, budget.estimate_tokens, budget.estimate_cost, budget.ttl]
            if budget
            else [0] * 5
        )
        try:
            refused, requests, tokens = await self._admit(keys=[r, t, p, b], args=args)
        except Exception as error:  # redis errors of every kind: serve on, per process
            self._failed(error)
            return await self._fallback.admit(key_id=key_id, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget)
        result: dict[str, Any] = {"requests_remaining": float(requests), "tokens_remaining": float(tokens)}
        refused = refused.decode() if isinstance(refused, bytes) else refused
        if refused:
            result["refused"] = refused
        return result

    async def settle(
        self,
        *,
        key_id: int,
        tpm: int,
        tokens: int,
        release_parallel: bool,
        budget: Budget | None,
        actual_cost: float,
    ) -> None:
        _, t, p, b = _keys(key_id, budget.period_key if budget else "")
        args = [tpm, tokens, 1 if release_parallel else 0, 1 if budget else 0]
        args += [budget.estimate_tokens, budget.estimate_cost, tokens, actual_cost, budget.ttl] if budget else [0] * 5
        try:
            await self._settle(keys=[t, p, b], args=args)
        except Exception as error:
            self._failed(error)
            await self._fallback.settle(
                key_id=key_id,
                tpm=tpm,
                tokens=tokens,
                release_parallel=release_parallel,
                budget=budget,
                actual_cost=actual_cost,
            )

    async def budget_seeded(self, key_id: int, period_key: str) -> bool:
        try:
            return bool(await self._redis.hexists(_keys(key_id, period_key)[3], "st"))
        except Exception as error:
            self._failed(error)
            return await self._fallback.budget_seeded(key_id, period_key)

    async def seed_budget(self, key_id: int, period_key: str, tokens: int, cost: float, ttl: int) -> None:
        try:
            await self._seed(keys=[_keys(key_id, period_key)[3]], args=[tokens, cost, ttl])
        except Exception as error:
            self._failed(error)
        await self._fallback.seed_budget(key_id, period_key, tokens, cost, ttl)
