"""The limit stores' rules, in memory and on a real Redis (when one is reachable)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from gateway.limits import Budget, estimate_tokens, period_bounds
from gateway.limitstore import MemoryLimitStore, RedisLimitStore

REDIS_URL = os.environ.get("KEYGATE_TEST_REDIS_URL", "redis://127.0.0.1:63799/0")


def _redis_reachable() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return True
    except OSError:
        return False


def _memory() -> MemoryLimitStore:
    return MemoryLimitStore()


def _redis(settings) -> RedisLimitStore:
    import redis.asyncio as aioredis

    settings.KEYGATE_REDIS_NAMESPACE = f"kgunit{secrets.token_hex(4)}"
    return RedisLimitStore(aioredis.Redis.from_url(REDIS_URL))


@pytest.fixture(params=["memory", "redis"])
def store(request, settings):
    if request.param == "memory":
        return _memory()
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"Redis not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return _redis(settings)


def _budget(limit_tokens: int = 0, limit_cost: float = 0.0, estimate: int = 10, cost: float = 0.0) -> Budget:
    return Budget(
        period="total",
        period_key="total",
        ttl=0,
        since=None,
        ends=None,
        limit_tokens=limit_tokens,
        limit_cost=limit_cost,
        estimate_tokens=estimate,
        estimate_cost=cost,
    )


def run(coroutine):
    return asyncio.run(coroutine)


def test_rpm_admits_exactly_the_limit_then_refuses(store) -> None:
    async def scenario():
        results = [await store.admit(key_id=1, rpm=3, tpm=0, max_parallel=0, budget=None) for _ in range(5)]
        return [r.get("refused", "") for r in results], [r["requests_remaining"] for r in results]

    refused, remaining = run(scenario())
    assert refused == ["", "", "", "requests", "requests"]
    assert [int(r) for r in remaining[:3]] == [2, 1, 0]


def test_tpm_is_charged_after_the_fact_and_refuses_once_spent(store) -> None:
    async def scenario():
        first = await store.admit(key_id=2, rpm=0, tpm=100, max_parallel=0, budget=None)
        await store.settle(key_id=2, tpm=100, tokens=150, release_parallel=False, budget=None, actual_cost=0.0)
        second = await store.admit(key_id=2, rpm=0, tpm=100, max_parallel=0, budget=None)
        return first, second

    first, second = run(scenario())
    assert "refused" not in first
    assert second["refused"] == "tokens" and second["tokens_remaining"] < 0


def test_max_parallel_counts_requests_in_flight(store) -> None:
    async def scenario():
        a = await store.admit(key_id=3, rpm=0, tpm=0, max_parallel=2, budget=None)
        b = await store.admit(key_id=3, rpm=0, tpm=0, max_parallel=2, budget=None)
        c = await store.admit(key_id=3, rpm=0, tpm=0, max_parallel=2, budget=None)
        await store.settle(key_id=3, tpm=0, tokens=0, release_parallel=True, budget=None, actual_cost=0.0)
        d = await store.admit(key_id=3, rpm=0, tpm=0, max_parallel=2, budget=None)
        return [x.get("refused", "") for x in (a, b, c, d)]

    assert run(scenario()) == ["", "", "parallel", ""]


def test_a_budget_reserves_estimates_and_charges_actual_usage(store) -> None:
    async def scenario():
        await store.seed_budget(4, "total", 0, 0.0, 0)
        budget = _budget(limit_tokens=100, estimate=40)
        a = await store.admit(key_id=4, rpm=0, tpm=0, max_parallel=0, budget=budget)
        b = await store.admit(key_id=4, rpm=0, tpm=0, max_parallel=0, budget=budget)
        c = await store.admit(key_id=4, rpm=0, tpm=0, max_parallel=0, budget=budget)  # 80 reserved + 40 > 100
        await store.settle(key_id=4, tpm=0, tokens=10, release_parallel=False, budget=budget, actual_cost=0.0)
        d = await store.admit(key_id=4, rpm=0, tpm=0, max_parallel=0, budget=budget)  # 10 spent + 40 + 40 <= 100
        return [x.get("refused", "") for x in (a, b, c, d)]

    assert run(scenario()) == ["", "", "budget_tokens", ""]


def test_a_seeded_budget_counts_what_was_spent_before(store) -> None:
    async def scenario():
        assert not await store.budget_seeded(5, "total")
        await store.seed_budget(5, "total", 95, 0.0, 0)
        assert await store.budget_seeded(5, "total")
        return await store.admit(key_id=5, rpm=0, tpm=0, max_parallel=0, budget=_budget(limit_tokens=100, estimate=10))

    assert run(scenario())["refused"] == "budget_tokens"


def test_a_cost_budget_refuses_when_the_estimate_would_pass_it(store) -> None:
    async def scenario():
        await store.seed_budget(6, "total", 0, 0.9, 0)
        return await store.admit(
            key_id=6, rpm=0, tpm=0, max_parallel=0, budget=_budget(limit_cost=1.0, estimate=10, cost=0.2)
        )

    assert run(scenario())["refused"] == "budget_usd"


def test_a_refused_request_changes_no_counter(store) -> None:
    async def scenario():
        await store.admit(key_id=7, rpm=0, tpm=0, max_parallel=1, budget=None)
        refused = await store.admit(key_id=7, rpm=5, tpm=0, max_parallel=1, budget=None)
        await store.settle(key_id=7, tpm=0, tokens=0, release_parallel=True, budget=None, actual_cost=0.0)
        again = await store.admit(key_id=7, rpm=5, tpm=0, max_parallel=1, budget=None)
        return refused, again

    refused, again = run(scenario())
    assert refused["refused"] == "parallel" and "refused" not in again
    assert int(again["requests_remaining"]) == 4  # the refused request took no request token


def test_redis_failure_falls_back_to_memory_and_keeps_limiting(settings) -> None:
    import redis.asyncio as aioredis

    errors = []
    store = RedisLimitStore(
        aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), on_error=lambda: errors.append(1)
    )

    async def scenario():
        return [await store.admit(key_id=8, rpm=2, tpm=0, max_parallel=0, budget=None) for _ in range(3)]

    results = run(scenario())
    assert [r.get("refused", "") for r in results] == ["", "", "requests"]
    assert len(errors) == 3


@pytest.mark.parametrize(
    ("period", "key", "start", "end"),
    [
        pytest.param(
            "day", "d20261122", datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), id="day"
        ),
        pytest.param(
            "week",
            "w20261116",
            datetime(2026, 11, 16, tzinfo=UTC),
            datetime(2026, 11, 23, tzinfo=UTC),
            id="week-starts-monday",
        ),
        pytest.param(
            "month", "m202611", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), id="month"
        ),
        pytest.param("total", "total", None, None, id="total"),
    ],
)
def test_budget_periods_are_utc_calendar_periods(period, key, start, end) -> None:
    assert period_bounds(period, datetime(2026, 11, 22, 15, 30, tzinfo=UTC)) == (key, start, end)


def test_december_rolls_into_january() -> None:
    assert period_bounds("month", datetime(2026, 12, 31, 23, 59, tzinfo=UTC))[2] == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_estimate_uses_max_tokens_when_given() -> None:
    from types import SimpleNamespace

    request = SimpleNamespace(body=b"x" * 400, json={"max_tokens": 50})
    assert estimate_tokens(request) == 100 + 50
    request = SimpleNamespace(body=b"x" * 400, json={"max_completion_tokens": 7})
    assert estimate_tokens(request) == 107
    request = SimpleNamespace(body=b"x" * 4, json={"max_tokens": "lots"})
    assert estimate_tokens(request) == 1 + 1024
