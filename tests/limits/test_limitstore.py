"""The limit stores' rules, in memory and on a real Redis (when one is reachable)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from gateway.limits import Budget, estimate_tokens, period_bounds
from gateway.limitstore import MemoryLimitStore, RedisLimitStore, Scope

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


def _key(key_id: int, **limits) -> Scope:
    return Scope("key", key_id, **limits)


def _period(period_key: str) -> Budget:
    return replace(_budget(), period_key=period_key)


def _levels(result: dict) -> dict:
    """A one-scope admission's result as one dict: the scope's levels and what refused."""
    return {**result["scopes"][-1], **({"refused": result["refused"]} if "refused" in result else {})}


def run(coroutine):
    return asyncio.run(coroutine)


def test_rpm_admits_exactly_the_limit_then_refuses(store) -> None:
    async def scenario():
        results = [_levels(await store.admit([_key(1, rpm=3)])) for _ in range(5)]
        return [r.get("refused", "") for r in results], [r["requests_remaining"] for r in results]

    refused, remaining = run(scenario())
    assert refused == ["", "", "", "requests", "requests"]
    assert [int(r) for r in remaining[:3]] == [2, 1, 0]


def test_tpm_is_charged_after_the_fact_and_refuses_once_spent(store) -> None:
    async def scenario():
        first = await store.admit([_key(2, tpm=100)])
        await store.settle([_key(2, tpm=100)], tokens=150, actual_cost=0.0)
        second = _levels(await store.admit([_key(2, tpm=100)]))
        return first, second

    first, second = run(scenario())
    assert "refused" not in first
    assert second["refused"] == "tokens" and second["tokens_remaining"] < 0


def test_max_parallel_counts_requests_in_flight(store) -> None:
    async def scenario():
        a = await store.admit([_key(3, max_parallel=2)])
        b = await store.admit([_key(3, max_parallel=2)])
        c = await store.admit([_key(3, max_parallel=2)])
        await store.settle([_key(3, max_parallel=1)], tokens=0, actual_cost=0.0)
        d = await store.admit([_key(3, max_parallel=2)])
        return [x.get("refused", "") for x in (a, b, c, d)]

    assert run(scenario()) == ["", "", "parallel", ""]


def test_a_budget_reserves_estimates_and_charges_actual_usage(store) -> None:
    async def scenario():
        await store.seed_budget(_key(4, budget=_budget()), 0, 0.0)
        budget = _budget(limit_tokens=100, estimate=40)
        a = await store.admit([_key(4, budget=budget)])
        b = await store.admit([_key(4, budget=budget)])
        c = await store.admit([_key(4, budget=budget)])  # 80 reserved + 40 > 100
        await store.settle([_key(4, budget=budget)], tokens=10, actual_cost=0.0)
        d = await store.admit([_key(4, budget=budget)])  # 10 spent + 40 + 40 <= 100
        return [x.get("refused", "") for x in (a, b, c, d)]

    assert run(scenario()) == ["", "", "budget_tokens", ""]


def test_a_seeded_budget_counts_what_was_spent_before(store) -> None:
    async def scenario():
        assert not await store.budget_seeded(_key(5, budget=_budget()))
        await store.seed_budget(_key(5, budget=_budget()), 95, 0.0)
        assert await store.budget_seeded(_key(5, budget=_budget()))
        return await store.admit([_key(5, budget=_budget(limit_tokens=100, estimate=10))])

    assert run(scenario())["refused"] == "budget_tokens"


def test_a_cost_budget_refuses_when_the_estimate_would_pass_it(store) -> None:
    async def scenario():
        await store.seed_budget(_key(6, budget=_budget()), 0, 0.9)
        return await store.admit([_key(6, budget=_budget(limit_cost=1.0, estimate=10, cost=0.2))])

    assert run(scenario())["refused"] == "budget_usd"


def test_a_refused_request_changes_no_counter(store) -> None:
    async def scenario():
        await store.admit([_key(7, max_parallel=1)])
        refused = await store.admit([_key(7, rpm=5, max_parallel=1)])
        await store.settle([_key(7, max_parallel=1)], tokens=0, actual_cost=0.0)
        again = _levels(await store.admit([_key(7, rpm=5, max_parallel=1)]))
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
        return [await store.admit([_key(8, rpm=2)]) for _ in range(3)]

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


# --- MemoryLimitStore with a clock moved by hand: exact levels, boundaries and refills ----------


class Clock:
    """Stands in for the ``time`` module in gateway.limitstore."""

    def __init__(self) -> None:
        self.now = 5000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from gateway import limitstore

    fake = Clock()
    monkeypatch.setattr(limitstore, "time", fake)
    return fake


def _admit(store: MemoryLimitStore, *, rpm: int = 0, tpm: int = 0, parallel: int = 0, budget=None) -> dict:
    return _levels(run(store.admit([_key(1, rpm=rpm, tpm=tpm, max_parallel=parallel, budget=budget)])))


def _settle(store: MemoryLimitStore, *, tpm: int = 0, tokens: int = 0, release: bool = False, budget=None, cost=0.0):
    scope = _key(1, tpm=tpm, budget=budget, max_parallel=1 if release else 0)
    run(store.settle([scope], tokens=tokens, actual_cost=cost))


def test_the_memory_store_admits_while_a_whole_request_token_is_left(clock) -> None:
    store = MemoryLimitStore()
    assert [_admit(store, rpm=2).get("refused", "") for _ in range(3)] == ["", "", "requests"]


def test_the_memory_store_refills_requests_at_the_per_minute_rate(clock) -> None:
    store = MemoryLimitStore()
    for _ in range(60):
        _admit(store, rpm=60)
    clock.now += 30.0
    assert _admit(store, rpm=60)["requests_remaining"] == pytest.approx(29.0)  # 30 refilled, 1 taken


def test_the_memory_store_refills_no_more_than_the_limit(clock) -> None:
    store = MemoryLimitStore()
    _admit(store, rpm=10)
    clock.now += 3600.0
    assert _admit(store, rpm=10)["requests_remaining"] == pytest.approx(9.0)


def test_the_memory_store_refills_tokens_at_the_per_minute_rate(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=600, tokens=600)
    clock.now += 6.0
    assert _admit(store, tpm=600)["tokens_remaining"] == pytest.approx(60.0)


def test_the_memory_store_reports_minus_one_for_a_limit_the_key_does_not_have(clock) -> None:
    result = _admit(MemoryLimitStore(), parallel=1)
    assert result == {"requests_remaining": -1.0, "tokens_remaining": -1.0}


def test_the_memory_store_refuses_tokens_once_the_bucket_is_exactly_empty(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=100, tokens=100)
    assert _admit(store, tpm=100) == {"requests_remaining": -1.0, "tokens_remaining": 0.0, "refused": "tokens"}


def test_the_memory_store_admits_with_one_token_left(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=100, tokens=99)
    assert "refused" not in _admit(store, tpm=100)


def test_the_memory_store_charges_each_settled_usage_to_the_token_bucket(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=100, tokens=60)
    _settle(store, tpm=100, tokens=60)
    assert _admit(store, tpm=100)["tokens_remaining"] == pytest.approx(-20.0)


def test_admitting_a_request_does_not_refill_the_token_bucket(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=100, tokens=60)
    _admit(store, tpm=100)
    assert _admit(store, tpm=100)["tokens_remaining"] == pytest.approx(40.0)


def test_settling_a_budget_the_store_has_never_seen_still_charges_it(clock) -> None:
    # e.g. admitted on Redis, settled on the in-memory fallback during an outage
    store = MemoryLimitStore()
    _settle(store, budget=_budget(limit_tokens=100, estimate=10), tokens=50)
    assert _admit(store, budget=_budget(limit_tokens=100, estimate=60))["refused"] == "budget_tokens"


def test_usage_settled_before_a_key_had_a_tpm_limit_does_not_count_against_it(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, tpm=0, tokens=500)
    assert _admit(store, tpm=100)["tokens_remaining"] == 100.0


def test_the_memory_store_admits_the_first_request_of_a_parallel_limit_of_one(clock) -> None:
    store = MemoryLimitStore()
    assert [_admit(store, parallel=1).get("refused", "") for _ in range(2)] == ["", "parallel"]


def test_settle_frees_one_parallel_slot_at_a_time(clock) -> None:
    store = MemoryLimitStore()
    _admit(store, parallel=2)
    _admit(store, parallel=2)
    _settle(store, release=True)
    assert [_admit(store, parallel=2).get("refused", "") for _ in range(2)] == ["", "parallel"]


def test_releasing_a_slot_that_was_never_taken_leaves_the_count_at_zero(clock) -> None:
    store = MemoryLimitStore()
    _settle(store, release=True)
    assert [_admit(store, parallel=1).get("refused", "") for _ in range(2)] == ["", "parallel"]


def test_an_unseeded_budget_starts_from_nothing_spent(clock) -> None:
    assert "refused" not in _admit(MemoryLimitStore(), budget=_budget(limit_tokens=10, estimate=10))


def test_an_estimate_that_exactly_fills_the_token_budget_is_admitted(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_tokens=100, estimate=50)
    assert [_admit(store, budget=budget).get("refused", "") for _ in range(3)] == ["", "", "budget_tokens"]


def test_an_estimate_that_exactly_fills_the_cost_budget_is_admitted(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_cost=1.0, estimate=1, cost=0.5)
    assert [_admit(store, budget=budget).get("refused", "") for _ in range(3)] == ["", "", "budget_usd"]


def test_a_token_budget_without_a_cost_limit_ignores_the_estimated_cost(clock) -> None:
    budget = _budget(limit_tokens=100, estimate=1, cost=5.0)
    assert "refused" not in _admit(MemoryLimitStore(), budget=budget)


def test_settle_releases_the_whole_token_reservation(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_tokens=100, estimate=100)
    _admit(store, budget=budget)
    _settle(store, budget=budget, tokens=0)
    assert "refused" not in _admit(store, budget=budget)


def test_settle_releases_the_whole_cost_reservation(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_cost=1.0, estimate=1, cost=1.0)
    _admit(store, budget=budget)
    _settle(store, budget=budget, cost=0.0)
    assert "refused" not in _admit(store, budget=budget)


def test_settled_tokens_add_up_in_the_budget(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_tokens=100, estimate=1)
    for used in (40, 40):
        _admit(store, budget=budget)
        _settle(store, budget=budget, tokens=used)
    assert "refused" not in _admit(store, budget=_budget(limit_tokens=100, estimate=20))
    assert _admit(store, budget=_budget(limit_tokens=100, estimate=1))["refused"] == "budget_tokens"


def test_settled_costs_add_up_in_the_budget(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_cost=1.0, estimate=1, cost=0.01)
    for used in (0.4, 0.4):
        _admit(store, budget=budget)
        _settle(store, budget=budget, cost=used)
    assert "refused" not in _admit(store, budget=_budget(limit_cost=1.0, estimate=1, cost=0.2))
    assert _admit(store, budget=_budget(limit_cost=1.0, estimate=1, cost=0.01))["refused"] == "budget_usd"


def test_cost_reservations_of_requests_in_flight_add_up(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_cost=1.0, estimate=1, cost=0.4)
    assert [_admit(store, budget=budget).get("refused", "") for _ in range(3)] == ["", "", "budget_usd"]


def test_budgets_of_different_periods_are_counted_apart(clock) -> None:
    store = MemoryLimitStore()
    run(store.seed_budget(_key(1, budget=_period("d20261122")), 100, 0.0))
    tomorrow = replace(_budget(limit_tokens=100, estimate=10), period_key="d20261123")
    assert "refused" not in _admit(store, budget=tomorrow)
    assert run(store.budget_seeded(_key(1, budget=_period("d20261122")))) and not run(
        store.budget_seeded(_key(2, budget=_period("d20261122")))
    )


def test_seeding_an_already_counted_budget_keeps_its_count(clock) -> None:
    store = MemoryLimitStore()
    budget = _budget(limit_tokens=100, estimate=60)
    _admit(store, budget=budget)
    run(store.seed_budget(_key(1, budget=_budget()), 0, 0.0))
    assert _admit(store, budget=budget)["refused"] == "budget_tokens"


def test_tokens_refilled_before_a_token_limit_changes_keep_the_old_rate(clock) -> None:
    # Each admission re-stamps the bucket at its level (as the Redis script does): time already
    # passed refilled at the limit in force then, not at the new one set since.
    store = MemoryLimitStore()
    _settle(store, tpm=600, tokens=600)
    clock.now += 6.0
    assert _admit(store, tpm=600)["tokens_remaining"] == pytest.approx(60.0)
    assert _admit(store, tpm=6000)["tokens_remaining"] == pytest.approx(60.0)
