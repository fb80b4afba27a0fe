"""gateway.limits: KeyLimitsThrottle admits, reserves, refuses and settles; the rate-limit headers.

The throttle runs on the real :class:`~gateway.limitstore.MemoryLimitStore`. Its bucket clock is a
fake (``Clock``) and the wall clock is frozen with time-machine, so every figure is exact.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from gateway import limitstore
from gateway.dialects import Dialect
from gateway.http import GatewayRequest
from gateway.limits import (
    DEFAULT_OUTPUT_RESERVE,
    Admission,
    Budget,
    BudgetExceeded,
    KeyLimitsThrottle,
    RateLimited,
    _duration,
    budget_spent,
    estimate_tokens,
    has_limits,
    limit_headers,
    period_bounds,
)
from gateway.limitstore import MemoryLimitStore, Scope
from gateway.routing import Price, RoutingTable
from keys.services import KeyState

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # a Sunday; the day ends in 8 h 30 min
PRICES = RoutingTable(routes=[], prices=[Price("gpt-4o", Decimal("2.50"), Decimal("10.00"))])


class Clock:
    """Stands in for the ``time`` module in gateway.limitstore: a monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Seed:
    """The throttle's seed callable: spent amounts from the database, recorded per call."""

    def __init__(self, tokens: int = 0, cost: float = 0.0) -> None:
        self.spent = (tokens, cost)
        self.calls: list[tuple[int, datetime | None]] = []

    async def __call__(self, key_id: int, since: datetime | None, kind: str = "key") -> tuple[int, float]:
        self.calls.append((key_id, since) if kind == "key" else (kind, key_id, since))
        return self.spent


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limitstore, "time", fake)
    return fake


@pytest.fixture(autouse=True)
def _frozen_wall_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _state(**limits: Any) -> KeyState:
    state = KeyState(
        id=7,
        public_id="public000007",
        name="limited",
        owner_id=None,
        owner_is_active=True,
        model_patterns=("*",),
        is_management=False,
        expires_at=None,
        revoked_at=None,
        rpm_limit=None,
        tpm_limit=None,
        max_parallel=None,
        budget_tokens=None,
        budget_usd=None,
        budget_period="",
        allowed_ips=(),
    )
    return replace(state, **limits)


def _request(
    state: KeyState,
    *,
    dialect: Dialect = Dialect.OPENAI,
    body: bytes = b"",
    payload: dict[str, Any] | None = None,
    model: str = "gpt-4o",
) -> GatewayRequest:
    return GatewayRequest(
        scope={},
        method="POST",
        path="/v1/chat/completions",
        headers={},
        client_ip="127.0.0.1",
        request_id="req-1",
        dialect=dialect,
        endpoint="chat.completions",
        body=body,
        json=payload,
        model=model,
        auth=state,
    )


def _throttle(seed: Seed | None = None) -> KeyLimitsThrottle:
    return KeyLimitsThrottle(MemoryLimitStore(), lambda: PRICES, seed or Seed())


def run(coroutine):
    return asyncio.run(coroutine)


def _refusal(throttle: KeyLimitsThrottle, request: GatewayRequest, admitted: int) -> Any:
    """Admit ``admitted`` requests, then return the exception that refuses the next one."""

    async def scenario():
        for _ in range(admitted):
            await throttle.admit(request)
        with pytest.raises((RateLimited, BudgetExceeded)) as refused:
            await throttle.admit(request)
        return refused.value

    return run(scenario())


# --- which keys are limited -------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"rpm_limit": 1}, id="rpm"),
        pytest.param({"tpm_limit": 1}, id="tpm"),
        pytest.param({"max_parallel": 1}, id="parallel"),
        pytest.param({"budget_period": "day", "budget_tokens": 1}, id="token-budget"),
        pytest.param({"budget_period": "day", "budget_usd": Decimal("0.01")}, id="cost-budget"),
    ],
)
def test_any_one_limit_makes_a_key_limited(limits) -> None:
    assert has_limits(_state(**limits))


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"budget_period": "day"}, id="a-period-without-an-amount"),
        pytest.param({"budget_tokens": 100}, id="an-amount-without-a-period"),
        pytest.param({"rpm_limit": 0, "tpm_limit": 0, "max_parallel": 0}, id="zeros"),
    ],
)
def test_a_key_without_a_complete_limit_is_not_limited(limits) -> None:
    assert not has_limits(_state(**limits))


def test_a_key_without_limits_is_admitted_without_touching_the_store() -> None:
    throttle = _throttle()
    assert run(throttle.admit(_request(_state()))) is None
    assert throttle.store._buckets == {} and throttle.store._parallel == {} and throttle.store._budgets == {}


# --- admission ----------------------------------------------------------------------------------


def test_an_admission_remembers_what_settle_must_release(clock) -> None:
    state = _state(rpm_limit=5, tpm_limit=1000, max_parallel=2)
    admission = run(_throttle().admit(_request(state)))
    assert isinstance(admission, Admission)
    assert admission.scopes == (Scope("key", 7, rpm=5, tpm=1000, max_parallel=2, budget=None, slot="k7"),)


def test_an_admission_without_a_parallel_limit_holds_no_slot(clock) -> None:
    admission = run(_throttle().admit(_request(_state(rpm_limit=5))))
    assert admission.scopes[0].max_parallel == 0 and admission.scopes[0].tpm == 0


def test_an_admission_carries_the_rate_limit_headers(clock) -> None:
    admission = run(_throttle().admit(_request(_state(rpm_limit=60))))
    assert admission.headers == [
        (b"x-ratelimit-limit-requests", b"60"),
        (b"x-ratelimit-remaining-requests", b"59"),
        (b"x-ratelimit-reset-requests", b"1s"),
    ]


def test_an_anthropic_request_gets_anthropics_rate_limit_headers(clock) -> None:
    admission = run(_throttle().admit(_request(_state(rpm_limit=60), dialect=Dialect.ANTHROPIC)))
    assert [name for name, _ in admission.headers] == [
        b"anthropic-ratelimit-requests-limit",
        b"anthropic-ratelimit-requests-remaining",
        b"anthropic-ratelimit-requests-reset",
    ]


def test_each_request_takes_one_request_token(clock) -> None:
    throttle = _throttle()
    request = _request(_state(rpm_limit=3))

    async def scenario():
        return [dict((await throttle.admit(request)).headers)[b"x-ratelimit-remaining-requests"] for _ in range(3)]

    assert run(scenario()) == [b"2", b"1", b"0"]


# --- refusals: requests, tokens, parallel -------------------------------------------------------


def test_the_request_after_the_rpm_limit_is_a_429_rate_limit(clock) -> None:
    refusal = _refusal(_throttle(), _request(_state(rpm_limit=3)), admitted=3)
    assert isinstance(refusal, RateLimited)
    assert refusal.status_code == 429 and refusal.detail.code == "rate_limit_exceeded"
    assert refusal.limit == "requests"
    assert str(refusal.detail) == "Rate limit reached for this key: 3 requests per minute. Try again in 20.0 s."
    assert refusal.wait == pytest.approx(20.0)


def test_an_rpm_refusal_waits_only_for_the_missing_part_of_a_token(clock) -> None:
    throttle = _throttle()
    request = _request(_state(rpm_limit=2))

    async def scenario():
        await throttle.admit(request)
        await throttle.admit(request)
        clock.now += 15.0  # refills half a token at 2 per minute
        with pytest.raises(RateLimited) as refused:
            await throttle.admit(request)
        return refused.value

    refusal = run(scenario())
    assert str(refusal.detail).endswith("Try again in 15.0 s.") and refusal.wait == 15


def test_an_rpm_refusal_can_wait_less_than_a_second(clock) -> None:
    throttle = _throttle()
    request = _request(_state(rpm_limit=60))

    async def scenario():
        for _ in range(60):
            await throttle.admit(request)
        clock.now += 0.9
        with pytest.raises(RateLimited) as refused:
            await throttle.admit(request)
        return refused.value

    refusal = run(scenario())
    assert str(refusal.detail).endswith("Try again in 0.1 s.") and refusal.wait == 1


def test_a_tpm_refusal_waits_until_the_overdraft_and_one_token_are_refilled(clock) -> None:
    throttle = _throttle()
    request = _request(_state(tpm_limit=100))

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=150, cost=Decimal(0))
        with pytest.raises(RateLimited) as refused:
            await throttle.admit(request)
        return refused.value

    refusal = run(scenario())
    assert refusal.limit == "tokens" and refusal.detail.code == "rate_limit_exceeded"
    assert str(refusal.detail) == "Rate limit reached for this key: 100 tokens per minute. Try again in 30.6 s."
    assert refusal.wait == 31  # DRF rounds Retry-After up to whole seconds


def test_a_refusal_carries_the_rate_limit_headers(clock) -> None:
    refusal = _refusal(_throttle(), _request(_state(rpm_limit=1)), admitted=1)
    assert refusal.extra_headers == [
        (b"x-ratelimit-limit-requests", b"1"),
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-reset-requests", b"1m0s"),
        (b"x-keygate-limit-scope", b"key"),
    ]


def test_the_request_past_max_parallel_is_refused_for_one_second(clock) -> None:
    refusal = _refusal(_throttle(), _request(_state(max_parallel=2)), admitted=2)
    assert isinstance(refusal, RateLimited) and refusal.limit == "parallel"
    assert str(refusal.detail) == "Too many requests in flight for this key (limit 2)."
    assert refusal.detail.code == "rate_limit_exceeded"
    assert refusal.wait == 1.0


def test_a_parallel_refusal_carries_the_rate_limit_headers(clock) -> None:
    refusal = _refusal(_throttle(), _request(_state(max_parallel=1, rpm_limit=10)), admitted=1)
    assert refusal.extra_headers[:2] == [
        (b"x-ratelimit-limit-requests", b"10"),
        (b"x-ratelimit-remaining-requests", b"9"),
    ]


def test_a_rate_limit_error_has_no_drf_suffix() -> None:
    error = RateLimited("Slow down.", wait=3.0, headers=[(b"a", b"b")])
    assert str(error.detail) == "Slow down." and error.detail.code == "rate_limit_exceeded"
    assert error.extra_headers == [(b"a", b"b")] and error.wait == 3.0


# --- budgets: reservation, seeding, refusal ----------------------------------------------------


def test_a_day_budget_reserves_the_estimate_priced_by_the_routing_table(clock) -> None:
    state = _state(budget_period="day", budget_tokens=10_000, budget_usd=Decimal("5"))
    request = _request(state, body=b"x" * 401, payload={"max_tokens": 100})
    budget = run(_throttle().admit(request)).scopes[0].budget
    assert budget.estimate_cost == pytest.approx((101 * 2.50 + 100 * 10.00) / 1_000_000)
    assert replace(budget, estimate_cost=0.0) == Budget(
        period="day",
        period_key="d20261122",
        ttl=8 * 3600 + 30 * 60 + 3600,  # to the end of the day, plus an hour
        since=datetime(2026, 11, 22, tzinfo=UTC),
        ends=datetime(2026, 11, 23, tzinfo=UTC),
        limit_tokens=10_000,
        limit_cost=5.0,
        estimate_tokens=101 + 100,
        estimate_cost=0.0,
    )


def test_a_total_budget_never_expires(clock) -> None:
    state = _state(budget_period="total", budget_usd=Decimal("2.5"))
    budget = run(_throttle().admit(_request(state, model="unpriced"))).scopes[0].budget
    assert (budget.period_key, budget.ttl, budget.since, budget.ends) == ("total", 0, None, None)
    assert (budget.limit_tokens, budget.limit_cost, budget.estimate_cost) == (0, 2.5, 0.0)


def test_a_budget_amount_without_a_period_reserves_nothing(clock) -> None:
    state = _state(rpm_limit=10, budget_tokens=1, budget_usd=Decimal("0.01"))
    assert run(_throttle().admit(_request(state))).scopes[0].budget is None


def test_a_token_budget_has_no_cost_limit(clock) -> None:
    state = _state(budget_period="day", budget_tokens=100)
    assert run(_throttle().admit(_request(state, payload={"max_tokens": 1}))).scopes[0].budget.limit_cost == 0.0


class SeedRecordingStore(MemoryLimitStore):
    """The memory store, noting what the throttle seeds (the Redis store expires seeds by ``ttl``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seeds: list[tuple[int, str, int, float, int]] = []

    async def seed_budget(self, scope: Scope, tokens: int, cost: float) -> None:
        self.seeds.append((scope.id, scope.budget.period_key, tokens, cost, scope.budget.ttl))
        await super().seed_budget(scope, tokens, cost)


def test_a_seeded_budget_lives_until_an_hour_after_its_period(clock) -> None:
    store = SeedRecordingStore()
    throttle = KeyLimitsThrottle(store, lambda: PRICES, Seed(tokens=5, cost=0.5))
    run(throttle.admit(_request(_state(budget_period="day", budget_tokens=100), payload={"max_tokens": 1})))
    assert store.seeds == [(7, "d20261122", 5, 0.5, 8 * 3600 + 30 * 60 + 3600)]


def test_a_budget_is_seeded_from_the_database_once_per_period(clock) -> None:
    seed = Seed()
    throttle = _throttle(seed)
    request = _request(_state(budget_period="week", budget_tokens=10_000))

    async def scenario():
        await throttle.admit(request)
        await throttle.admit(request)

    run(scenario())
    assert seed.calls == [(7, datetime(2026, 11, 16, tzinfo=UTC))]


def test_what_the_database_says_was_spent_counts_against_the_budget(clock) -> None:
    throttle = _throttle(Seed(tokens=9_000))
    request = _request(_state(budget_period="month", budget_tokens=10_000), payload={"max_tokens": 999})
    run(throttle.admit(request))  # 9,000 + 999 fit
    with pytest.raises(BudgetExceeded):
        run(throttle.admit(request))


def test_spent_cost_from_the_database_counts_against_a_cost_budget(clock) -> None:
    throttle = _throttle(Seed(cost=0.99))
    request = _request(_state(budget_period="day", budget_usd=Decimal("1")), payload={"max_tokens": 2000})
    with pytest.raises(BudgetExceeded):
        run(throttle.admit(request))  # 0.99 + 2,000 × $10 / Mtok = 1.01


def test_requests_in_flight_reserve_their_estimates(clock) -> None:
    request = _request(_state(budget_period="day", budget_tokens=3000), payload={"max_tokens": 1000})
    refusal = _refusal(_throttle(), request, admitted=3)
    assert refusal.limit == "budget_tokens"


def test_a_spent_token_budget_is_a_429_insufficient_quota_until_the_period_ends(clock) -> None:
    request = _request(_state(budget_period="day", budget_tokens=1500), payload={"max_tokens": 1000})
    refusal = _refusal(_throttle(), request, admitted=1)
    assert isinstance(refusal, BudgetExceeded)
    assert refusal.status_code == 429 and refusal.detail.code == "key_budget_exceeded"
    assert refusal.error_type == "insufficient_quota" and refusal.limit == "budget_tokens"
    assert str(refusal.detail) == (
        "This key has used its token budget for the day (or the requests in flight have reserved the rest)."
        " It resets at 2026-11-23 00:00 UTC."
    )
    assert refusal.wait == pytest.approx(8.5 * 3600)


def test_a_budget_refusal_tells_sdks_not_to_retry(clock) -> None:
    request = _request(_state(budget_period="day", budget_tokens=10), payload={"max_tokens": 1000})
    refusal = _refusal(_throttle(), request, admitted=0)
    assert refusal.extra_headers == [(b"x-should-retry", b"false"), (b"x-keygate-limit-scope", b"key")]


def test_a_spent_total_cost_budget_never_resets(clock) -> None:
    request = _request(_state(budget_period="total", budget_usd=Decimal("0.01")), payload={"max_tokens": 2000})
    refusal = _refusal(_throttle(), request, admitted=0)
    assert refusal.limit == "budget_usd"
    assert str(refusal.detail) == (
        "This key has used its cost budget for the total (or the requests in flight have reserved the rest)."
    )
    assert refusal.wait is None


# --- settle --------------------------------------------------------------------------------------


def test_settle_charges_the_reported_tokens_to_the_tpm_bucket(clock) -> None:
    throttle = _throttle()
    request = _request(_state(tpm_limit=1000))

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=400, cost=Decimal(0))
        return (await throttle.admit(request)).headers

    assert dict(run(scenario()))[b"x-ratelimit-remaining-tokens"] == b"600"


def test_settle_frees_the_parallel_slot(clock) -> None:
    throttle = _throttle()
    request = _request(_state(max_parallel=1))

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=0, cost=Decimal(0))
        return await throttle.admit(request)

    assert run(scenario()) is not None


def test_settle_releases_the_reservation_and_charges_the_actual_tokens(clock) -> None:
    throttle = _throttle()
    request = _request(_state(budget_period="day", budget_tokens=2000), payload={"max_tokens": 1000})

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=500, cost=Decimal(0))
        await throttle.admit(request)  # 500 spent + 1,000 reserved
        with pytest.raises(BudgetExceeded):
            await throttle.admit(request)  # + 1,000 more would pass 2,000

    run(scenario())


def test_settle_charges_the_actual_cost(clock) -> None:
    throttle = _throttle()
    request = _request(_state(budget_period="day", budget_usd=Decimal("1")), payload={"max_tokens": 10})

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=10, cost=Decimal("0.99995"))
        with pytest.raises(BudgetExceeded) as refused:
            await throttle.admit(request)  # 0.99995 + 10 × $10 / Mtok > 1
        return refused.value

    assert run(scenario()).limit == "budget_usd"


# --- the rate-limit headers of both dialects ---------------------------------------------------


def test_openai_headers_name_limit_remaining_and_reset_of_both_buckets() -> None:
    state = _state(rpm_limit=600, tpm_limit=1000)
    headers = limit_headers(Dialect.OPENAI, state, {"requests_remaining": 599.0, "tokens_remaining": 250.5})
    assert headers == [
        (b"x-ratelimit-limit-requests", b"600"),
        (b"x-ratelimit-remaining-requests", b"599"),
        (b"x-ratelimit-reset-requests", b"100ms"),
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-remaining-tokens", b"250"),
        (b"x-ratelimit-reset-tokens", b"45s"),
    ]


def test_anthropic_headers_give_the_reset_as_a_utc_timestamp() -> None:
    state = _state(rpm_limit=60, tpm_limit=1000)
    headers = limit_headers(Dialect.ANTHROPIC, state, {"requests_remaining": 30.0, "tokens_remaining": 1000.0})
    assert headers == [
        (b"anthropic-ratelimit-requests-limit", b"60"),
        (b"anthropic-ratelimit-requests-remaining", b"30"),
        (b"anthropic-ratelimit-requests-reset", b"2026-11-22T15:30:30Z"),
        (b"anthropic-ratelimit-tokens-limit", b"1000"),
        (b"anthropic-ratelimit-tokens-remaining", b"1000"),
        (b"anthropic-ratelimit-tokens-reset", b"2026-11-22T15:30:00Z"),
    ]


def test_an_overdrawn_bucket_shows_zero_remaining_and_a_full_minute_to_reset() -> None:
    state = _state(tpm_limit=1000)
    headers = limit_headers(Dialect.OPENAI, state, {"requests_remaining": -1.0, "tokens_remaining": -50.0})
    assert headers == [
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-remaining-tokens", b"0"),
        (b"x-ratelimit-reset-tokens", b"1m0s"),
    ]


def test_an_overdrawn_anthropic_bucket_resets_a_minute_from_now() -> None:
    state = _state(rpm_limit=10)
    headers = limit_headers(Dialect.ANTHROPIC, state, {"requests_remaining": -0.5, "tokens_remaining": -1.0})
    assert headers[1:] == [
        (b"anthropic-ratelimit-requests-remaining", b"0"),
        (b"anthropic-ratelimit-requests-reset", b"2026-11-22T15:31:00Z"),
    ]


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch):
    """The server's local time zone is not UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_anthropic_reset_stamps_are_utc_whatever_the_servers_time_zone(tokyo_local_time) -> None:
    headers = limit_headers(Dialect.ANTHROPIC, _state(rpm_limit=60), {"requests_remaining": 0.0})
    assert headers[2] == (b"anthropic-ratelimit-requests-reset", b"2026-11-22T15:31:00Z")


def test_budget_periods_are_utc_whatever_the_servers_time_zone(tokyo_local_time) -> None:
    late_evening = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # already the 23rd in Tokyo
    assert period_bounds("day", late_evening)[0] == "d20261122"


def test_a_key_without_rate_limits_gets_no_headers() -> None:
    state = _state(max_parallel=3, budget_period="day", budget_tokens=10)
    assert limit_headers(Dialect.OPENAI, state, {"requests_remaining": -1.0, "tokens_remaining": -1.0}) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.02, "20ms", id="milliseconds"),
        pytest.param(0.9999, "999ms", id="just-under-a-second"),
        pytest.param(0.0, "0ms", id="zero"),
        pytest.param(-0.5, "0ms", id="never-negative"),
        pytest.param(1.0, "1s", id="one-second"),
        pytest.param(1.2, "2s", id="seconds-round-up"),
        pytest.param(59.5, "1m0s", id="rounds-up-to-a-minute"),
        pytest.param(61.0, "1m1s", id="minutes-and-seconds"),
        pytest.param(360.0, "6m0s", id="whole-minutes"),
    ],
)
def test_reset_durations_use_openais_format(seconds, text) -> None:
    assert _duration(seconds) == text


# --- estimates and periods -----------------------------------------------------------------------


def _sized(body: bytes, payload: dict[str, Any] | None) -> GatewayRequest:
    return _request(_state(), body=body, payload=payload)


@pytest.mark.parametrize(
    ("payload", "output"),
    [
        pytest.param({"max_output_tokens": 9}, 9, id="responses-api-field"),
        pytest.param({"max_tokens": 5, "max_completion_tokens": 9}, 5, id="max-tokens-first"),
        pytest.param({"max_completion_tokens": 9, "max_output_tokens": 3}, 9, id="completion-tokens-before-output"),
        pytest.param({"max_tokens": True}, DEFAULT_OUTPUT_RESERVE, id="a-boolean-is-not-a-number"),
        pytest.param({"max_tokens": 0}, DEFAULT_OUTPUT_RESERVE, id="zero-is-ignored"),
        pytest.param({"max_tokens": -5}, DEFAULT_OUTPUT_RESERVE, id="negative-is-ignored"),
        pytest.param({"max_tokens": 2.5}, DEFAULT_OUTPUT_RESERVE, id="a-float-is-ignored"),
        pytest.param({"max_tokens": 1}, 1, id="one"),
        pytest.param(None, DEFAULT_OUTPUT_RESERVE, id="no-json"),
    ],
)
def test_the_output_estimate_comes_from_the_first_positive_integer_limit(payload, output) -> None:
    assert estimate_tokens(_sized(b"", payload)) == output


def test_the_input_estimate_is_a_quarter_of_the_body_rounded_up() -> None:
    assert estimate_tokens(_sized(b"x" * 5, {"max_tokens": 1})) == 2 + 1
    assert DEFAULT_OUTPUT_RESERVE == 1024


def test_budget_periods_follow_utc_even_for_a_local_time() -> None:
    tokyo_morning = datetime(2026, 11, 23, 8, 0, 45, 500, tzinfo=ZoneInfo("Asia/Tokyo"))  # 23:00 UTC the day before
    assert period_bounds("day", tokyo_morning) == (
        "d20261122",
        datetime(2026, 11, 22, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("now", "key", "end"),
    [
        pytest.param(datetime(2026, 2, 10, tzinfo=UTC), "m202602", datetime(2026, 3, 1, tzinfo=UTC), id="february"),
        pytest.param(datetime(2026, 1, 31, tzinfo=UTC), "m202601", datetime(2026, 2, 1, tzinfo=UTC), id="january"),
    ],
)
def test_a_month_ends_on_the_first_of_the_next(now, key, end) -> None:
    assert period_bounds("month", now) == (key, now.replace(day=1), end)


@pytest.mark.django_db
def test_spent_amounts_are_summed_from_the_keys_usage_since_the_period_start(make_key) -> None:
    from keys.models import UsageRecord

    key, _ = make_key()
    other, _ = make_key(name="other")
    since = datetime(2026, 11, 22, tzinfo=UTC)

    def record(api_key, at, tokens_in, tokens_out, cost):
        UsageRecord.objects.create(
            key=api_key,
            created_at=at,
            endpoint="chat.completions",
            status_code=200,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=Decimal(cost),
        )

    record(key, since, 10, 5, "0.25")
    record(key, since + timedelta(hours=3), 1, 2, "0.5")
    record(key, since - timedelta(seconds=1), 1000, 1000, "9")  # the day before
    record(other, since + timedelta(hours=1), 1000, 1000, "9")  # another key
    assert budget_spent(key.id, since) == (18, 0.75)
    assert budget_spent(key.id, None) == (2018, 9.75)


@pytest.mark.django_db
def test_a_key_without_usage_has_spent_nothing(make_key) -> None:
    key, _ = make_key()
    assert budget_spent(key.id, None) == (0, 0.0)
