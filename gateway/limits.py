"""Key and team limits: requests and tokens per minute, parallel requests, token and cost budgets.

A request's **scopes** are its key and, for a key in a team, the team: every limit of every
scope must pass (the key may only narrow its team's). One store call admits against all scopes
at once — each scope is checked, and only when all pass is anything reserved — and one settles
against all; a refusal names its scope (``x-keygate-limit-scope: key|team``, codes
``key_budget_exceeded`` / ``team_budget_exceeded``, and "this key" / "this team" in the
message). A team's budget is shared by its keys: reserved and charged by each of them, seeded
from the usage records of all of them (usage by team is usage of the team's keys).

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
  ``Σ (actual − estimate)`` over the requests in flight when the budget ran out. For a team's
  budget the sum runs over the requests in flight of all its keys, in every process (with
  Redis; without it, each process holds the budget on its own).
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
from gateway.limitstore import Scope
from keys.constants import BudgetPeriod
from keys.limits import Limits

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

    def __init__(self, detail: str, *, wait: float | None, scope: str = "key") -> None:
        super().__init__(wait=wait, detail=detail)
        self.detail = ErrorDetail(detail, f"{scope}_budget_exceeded")
        self.extra_headers = [(b"x-should-retry", b"false"), scope_header(scope)]


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
    """What ``admit`` reserved (in each scope), to be released by ``settle``."""

    scopes: tuple[Scope, ...]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def scope_header(scope: str) -> tuple[bytes, bytes]:
    """Which limits refused a request: the key's own or its team's."""
    return (b"x-keygate-limit-scope", scope.encode())


def has_limits(state: KeyState) -> bool:
    """Does the key, or its team, have limits the gateway counts?"""
    return state.limits.is_counted or (state.team is not None and state.team.limits.is_counted)


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


def budget_spent(key_id: int, since: datetime | None, kind: str = "key") -> tuple[int, float]:
    """Tokens and USD a key (or, with ``kind="team"``, a team's keys together) spent since
    ``since`` (all time when None), from usage records."""
    from keys.models import UsageRecord

    records = (
        UsageRecord.objects.filter(key__team_id=key_id) if kind == "team" else UsageRecord.objects.filter(key_id=key_id)
    )
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


def binding_levels(scopes: tuple[Scope, ...], levels: list[dict[str, float]]) -> tuple[Limits, dict[str, float]]:
    """Per bucket kind (requests, tokens), the limit and level of the scope with the least left:
    what the rate-limit headers report when a key and its team both have one."""
    rpm = tpm = 0
    result = {"requests_remaining": -1.0, "tokens_remaining": -1.0}
    for scope, level in zip(scopes, levels, strict=False):
        if scope.rpm and (not rpm or level["requests_remaining"] < result["requests_remaining"]):
            rpm, result["requests_remaining"] = scope.rpm, level["requests_remaining"]
        if scope.tpm and (not tpm or level["tokens_remaining"] < result["tokens_remaining"]):
            tpm, result["tokens_remaining"] = scope.tpm, level["tokens_remaining"]
    return Limits(rpm_limit=rpm or None, tpm_limit=tpm or None), result


def limit_headers(dialect: Dialect, state: Any, result: dict[str, float]) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers of ``state``'s ``rpm_limit`` / ``tpm_limit`` (a key, or the
    binding levels) at the levels in ``result``."""
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
    """DRF's throttle vocabulary on the event loop: ``admit`` admits (against the key and its
    team) or raises 429; ``settle`` charges what the request used."""

    def __init__(self, store: LimitStore, table_getter: Any, seed: Any) -> None:
        self.store = store
        self._table = table_getter
        self._seed = seed  # async (id, since, kind) -> (tokens, cost) spent, from the database

    async def admit(self, request: GatewayRequest) -> Admission | None:
        state: KeyState = request.auth
        holders: list[tuple[str, int, Limits]] = []
        if state.limits.is_counted:
            holders.append(("key", state.id, state.limits))
        if state.team is not None and state.team.limits.is_counted:
            holders.append(("team", state.team.id, state.team.limits))
        if not holders:
            return None
        slot = f"t{state.team.id}" if state.team is not None else f"k{state.id}"
        estimate: tuple[int, float] | None = None
        scopes: list[Scope] = []
        for kind, holder_id, limits in holders:
            budget = None
            if limits.has_budget:
                estimate = estimate or self._estimate(request)
                budget = self._budget(limits, estimate)
            scope = Scope(
                kind=kind,
                id=holder_id,
                rpm=limits.rpm_limit or 0,
                tpm=limits.tpm_limit or 0,
                max_parallel=limits.max_parallel or 0,
                budget=budget,
                slot=slot,
            )
            if budget is not None and not await self.store.budget_seeded(scope):
                spent_tokens, spent_cost = await self._seed(holder_id, budget.since, kind)
                await self.store.seed_budget(scope, spent_tokens, spent_cost)
            scopes.append(scope)
        admitted = tuple(scopes)
        result = await self.store.admit(admitted)
        binding, levels = binding_levels(admitted, result["scopes"])
        headers = limit_headers(request.dialect, binding, levels)
        refused = result.get("refused")
        if refused:
            scope = admitted[result["scope"]]
            refusal = self._refusal(str(refused), scope, result["scopes"][result["scope"]], headers)
            refusal.limit = str(refused) if scope.kind == "key" else f"team_{refused}"
            raise refusal
        return Admission(admitted, headers)

    async def settle(self, admission: Admission, *, tokens: int, cost: Decimal) -> None:
        await self.store.settle(admission.scopes, tokens=tokens, actual_cost=float(cost))

    def _estimate(self, request: GatewayRequest) -> tuple[int, float]:
        """Tokens and USD a request may use, reserved against each budget until it settles."""
        tokens = estimate_tokens(request)
        table: RoutingTable = self._table()
        half = math.ceil(len(request.body) / 4)
        return tokens, float(table.cost(request.model or "", half, tokens - half))

    @staticmethod
    def _budget(limits: Limits, estimate: tuple[int, float]) -> Budget:
        now = datetime.now(UTC)
        key, since, ends = period_bounds(limits.budget_period, now)
        ttl = int((ends - now).total_seconds()) + 3600 if ends else 0
        return Budget(
            period=limits.budget_period,
            period_key=key,
            ttl=ttl,
            since=since,
            ends=ends,
            limit_tokens=limits.budget_tokens or 0,
            limit_cost=float(limits.budget_usd or 0),
            estimate_tokens=estimate[0],
            estimate_cost=estimate[1],
        )

    @staticmethod
    def _refusal(
        refused: str,
        scope: Scope,
        levels: dict[str, float],
        headers: list[tuple[bytes, bytes]],
    ) -> Throttled:
        holder = f"this {scope.kind}"
        headers = [*headers, scope_header(scope.kind)]
        if refused in ("budget_tokens", "budget_usd"):
            budget = scope.budget
            assert budget is not None
            what = "token" if refused == "budget_tokens" else "cost"
            until = f" It resets at {budget.ends:%Y-%m-%d %H:%M} UTC." if budget.ends else ""
            wait = (budget.ends - datetime.now(UTC)).total_seconds() if budget.ends else None
            return BudgetExceeded(
                f"{holder.capitalize()} has used its {what} budget for the {budget.period} "
                f"(or the requests in flight have reserved the rest).{until}",
                wait=wait,
                scope=scope.kind,
            )
        if refused == "parallel":
            return RateLimited(
                f"Too many requests in flight for {holder} (limit {scope.max_parallel}).", wait=1.0, headers=headers
            )
        limit = scope.rpm if refused == "requests" else scope.tpm
        remaining = levels[f"{refused}_remaining"]
        needed = 1.0 - remaining if refused == "requests" else -remaining + 1.0
        wait = max(0.001, needed * 60.0 / (limit or 1))
        return RateLimited(
            f"Rate limit reached for {holder}: {limit} {refused} per minute. Try again in {wait:.1f} s.",
            wait=wait,
            headers=headers,
        )
