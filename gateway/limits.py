"""Per-key limits: requests and tokens per minute, parallel requests, token and cost budgets.

All counters live in a :class:`~gateway.limitstore.LimitStore` — process memory, or Redis when
``REDIS_URL`` is set so every process enforces one limit together. A request is admitted by one
atomic store call and settled by another once its usage is known; keys without limits skip both.

- **RPM** and **TPM** are token buckets refilled continuously (capacity = the per-minute limit).
  A request takes one request token up front. Tokens are charged after the response from the
  usage the upstream reported; a request is admitted while the token bucket is above zero.
- **max_parallel** counts requests in flight.
- **Budgets** (tokens and/or USD per day / week / month / total, UTC periods) are *reserved*
  up front: a request is admitted only if ``spent + reserved-in-flight + its estimate`` fits.
  The estimate is ``len(body) / 4`` input tokens plus the request's ``max_tokens`` (or
  ``max_completion_tokens`` / ``max_output_tokens``; ``DEFAULT_OUTPUT_RESERVE`` when absent). On
  completion the reservation is released and the actual usage charged. **Overrun bound:** the
  budget can be exceeded only by what admitted requests use beyond their estimates — zero when
  clients send ``max_tokens`` and the input estimate holds, otherwise at most
  ``Σ (actual − estimate)`` over the requests in flight when the budget ran out.
- Spent amounts are seeded from the usage records in the database the first time a process (or
  a fresh Redis) sees a key's period, so restarts do not reset budgets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Sum
from rest_framework.exceptions import ErrorDetail
from rest_framework.throttling import BaseThrottle

from gateway.dialects import Dialect
from gateway.exceptions import Throttled
from keys.constants import BudgetPeriod

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.limitstore import LimitStore
    from gateway.routing import RoutingTable
    from keys.services import KeyState

DEFAULT_OUTPUT_RESERVE = 1024
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


class RateLimited(Throttled):
    """429 for RPM / TPM / parallel limits, with the ``x-ratelimit-*`` headers."""

    default_code = "rate_limit_exceeded"

    def __init__(self, detail: str, *, wait: float, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(wait=wait, detail=detail)
        self.detail = ErrorDetail(detail, self.default_code)  # without DRF's "Expected available in…"
        self.extra_headers = headers


class BudgetExceeded(Throttled):
    """429 with OpenAI's ``insufficient_quota`` code; SDKs are told not to retry."""

    default_code = "insufficient_quota"
    error_type = "insufficient_quota"

    def __init__(self, detail: str, *, wait: float | None) -> None:
        super().__init__(wait=wait, detail=detail)
        self.detail = ErrorDetail(detail, self.default_code)
        self.extra_headers = [(b"x-should-retry", b"false")]


@dataclass(slots=True)
class Budget:
    period: str
    period_key: str
    ttl: int
    since: datetime | None
    ends: datetime | None
    limit_tokens: int
    limit_cost: float
    estimate_tokens: int
    estimate_cost: float


@dataclass(slots=True)
class Admission:
    """What ``admit`` reserved, to be released by ``settle``."""

    key_id: int
    tpm: int
    holds_parallel: bool
    budget: Budget | None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def has_limits(state: KeyState) -> bool:
    return bool(
        state.rpm_limit
        or state.tpm_limit
        or state.max_parallel
        or (state.budget_period and (state.budget_tokens or state.budget_usd))
    )


def period_bounds(period: str, now: datetime) -> tuple[str, datetime | None, datetime | None]:
    """``(key, start, end)`` of the UTC budget period containing ``now``."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == BudgetPeriod.DAY:
        return f"d{day:%Y%m%d}", day, day + timedelta(days=1)
    if period == BudgetPeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        return f"w{start:%Y%m%d}", start, start + timedelta(days=7)
    if period == BudgetPeriod.MONTH:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return f"m{start:%Y%m}", start, end
    return "total", None, None


def estimate_tokens(request: GatewayRequest) -> int:
    output = DEFAULT_OUTPUT_RESERVE
    payload = request.json or {}
    for name in _OUTPUT_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            output = value
            break
    return math.ceil(len(request.body) / 4) + output


def budget_spent(key_id: int, since: datetime | None) -> tuple[int, float]:
    """Tokens and USD a key spent since ``since`` (all time when None), from usage records."""
    from keys.models import UsageRecord

    records = UsageRecord.objects.filter(key_id=key_id)
    if since is not None:
        records = records.filter(created_at__gte=since)
    totals = records.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost_usd"))
    return (totals["i"] or 0) + (totals["o"] or 0), float(totals["c"] or 0)


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    minutes, secs = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def limit_headers(dialect: Dialect, state: KeyState, result: dict[str, float]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for kind, limit in (("requests", state.rpm_limit), ("tokens", state.tpm_limit)):
        if not limit:
            continue
        remaining = max(0, math.floor(result[f"{kind}_remaining"]))
        reset = (limit - max(0.0, result[f"{kind}_remaining"])) * 60.0 / limit
        if dialect is Dialect.ANTHROPIC:
            stamp = datetime.fromtimestamp(time.time() + reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers += [
                (f"anthropic-ratelimit-{kind}-limit".encode(), str(limit).encode()),
                (f"anthropic-ratelimit-{kind}-remaining".encode(), str(remaining).encode()),
                (f"anthropic-ratelimit-{kind}-reset".encode(), stamp.encode()),
            ]
        else:
            headers += [
                (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()),
                (f"x-ratelimit-reset-{kind}".encode(), _duration(reset).encode()),
            ]
    return headers


class KeyLimitsThrottle(BaseThrottle):
    """DRF's throttle vocabulary on the event loop: ``aallow_request`` admits or raises 429."""

    def __init__(self, store: LimitStore, table_getter: Any, seed: Any) -> None:
        self.store = store
        self._table = table_getter
        self._seed = seed

    async def admit(self, request: GatewayRequest) -> Admission | None:
        state: KeyState = request.auth
        if not has_limits(state):
            return None
        budget = None
        if state.budget_period and (state.budget_tokens or state.budget_usd):
            budget = await self._budget(state, request)
        result = await self.store.admit(
            key_id=state.id,
            rpm=state.rpm_limit or 0,
            tpm=state.tpm_limit or 0,
            max_parallel=state.max_parallel or 0,
            budget=budget,
        )
        headers = limit_headers(request.dialect, state, result)
        refused = result.get("refused")
        if refused:
            refusal = self._refusal(str(refused), state, budget, result, headers)
            refusal.limit = str(refused)
            raise refusal
        return Admission(state.id, state.tpm_limit or 0, bool(state.max_parallel), budget, headers)

    async def settle(self, admission: Admission, *, tokens: int, cost: Decimal) -> None:
        await self.store.settle(
            key_id=admission.key_id,
            tpm=admission.tpm,
            tokens=tokens,
            release_parallel=admission.holds_parallel,
            budget=admission.budget,
            actual_cost=float(cost),
        )

    async def _budget(self, state: KeyState, request: GatewayRequest) -> Budget:
        now = datetime.now(UTC)
        key, since, ends = period_bounds(state.budget_period, now)
        ttl = int((ends - now).total_seconds()) + 3600 if ends else 0
        if not await self.store.budget_seeded(state.id, key):
            spent_tokens, spent_cost = await self._seed(state.id, since)
            await self.store.seed_budget(state.id, key, spent_tokens, spent_cost, ttl)
        tokens = estimate_tokens(request)
        table: RoutingTable = self._table()
        half = math.ceil(len(request.body) / 4)
        cost = float(table.cost(request.model or "", half, tokens - half))
        return Budget(
            period=state.budget_period,
            period_key=key,
            ttl=ttl,
            since=since,
            ends=ends,
            limit_tokens=state.budget_tokens or 0,
            limit_cost=float(state.budget_usd or 0),
            estimate_tokens=tokens,
            estimate_cost=cost,
        )

    @staticmethod
    def _refusal(
        refused: str,
        state: KeyState,
        budget: Budget | None,
        result: dict[str, float],
        headers: list[tuple[bytes, bytes]],
    ) -> Throttled:
        if refused in ("budget_tokens", "budget_usd"):
            assert budget is not None
            what = "token" if refused == "budget_tokens" else "cost"
            until = f" It resets at {budget.ends:%Y-%m-%d %H:%M} UTC." if budget.ends else ""
            wait = (budget.ends - datetime.now(UTC)).total_seconds() if budget.ends else None
            return BudgetExceeded(
                f"This key has used its {what} budget for the {budget.period} "
                f"(or the requests in flight have reserved the rest).{until}",
                wait=wait,
            )
        if refused == "parallel":
            return RateLimited(
                f"Too many requests in flight for this key (limit {state.max_parallel}).", wait=1.0, headers=headers
            )
        limit = state.rpm_limit if refused == "requests" else state.tpm_limit
        remaining = result[f"{refused}_remaining"]
        needed = 1.0 - remaining if refused == "requests" else -remaining + 1.0
        wait = max(0.001, needed * 60.0 / (limit or 1))
        return RateLimited(
            f"Rate limit reached for this key: {limit} {refused} per minute. Try again in {wait:.1f} s.",
            wait=wait,
            headers=headers,
        )
