"""gateway.limits with teams: every limit of the key and of its team must pass; one admission
reserves against both or neither; a refusal names its scope. On the memory store and Redis."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from gateway.dialects import Dialect
from gateway.exceptions import PermissionDenied
from gateway.limits import Admission, BudgetExceeded, KeyLimitsThrottle, RateLimited, budget_spent
from gateway.limitstore import MemoryLimitStore, Scope
from gateway.permissions import ModelInScope
from gateway.wire import render_error
from keys.limits import Limits
from keys.services import TeamState
from tests.gateway.test_limits import NOW, PRICES, Seed, _request, _state, clock  # noqa: F401 (the bucket clock)
from tests.limits.test_limitstore import _budget, store  # noqa: F401 (the memory/Redis fixture)

TEAM = TeamState(id=3, name="search", model_patterns=("gpt-*",), limits=Limits())


@pytest.fixture(autouse=True)
def _frozen_wall_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _team_key(key_id: int, team: Limits = Limits(), **key_limits):
    return replace(_state(**key_limits), id=key_id, team=replace(TEAM, limits=team))


def _throttle(limit_store=None, seed=None) -> KeyLimitsThrottle:
    return KeyLimitsThrottle(limit_store or MemoryLimitStore(), lambda: PRICES, seed or Seed())


def run(coroutine):
    return asyncio.run(coroutine)


def _outcomes(throttle, requests) -> list:
    async def scenario():
        outcomes = []
        for request in requests:
            try:
                outcomes.append(await throttle.admit(request))
            except (RateLimited, BudgetExceeded) as refused:
                outcomes.append(refused)
        return outcomes

    return run(scenario())


def test_a_teams_budget_is_shared_by_its_keys_and_its_refusal_names_the_team() -> None:
    team = Limits(budget_tokens=2500, budget_period="day")
    a, b, c = (_request(_team_key(i, team), payload={"max_tokens": 1000}) for i in (1, 2, 3))
    first, second, third = _outcomes(_throttle(), [a, b, c])
    assert first is not None and second is not None
    assert isinstance(third, BudgetExceeded)
    assert third.detail.code == "team_budget_exceeded" and third.error_type == "insufficient_quota"
    assert third.limit == "team_budget_tokens"
    assert str(third.detail).startswith("This team has used its token budget for the day")
    assert (b"x-keygate-limit-scope", b"team") in third.extra_headers


def test_a_keys_budget_binding_before_its_teams_names_the_key() -> None:
    team = Limits(budget_tokens=100_000, budget_period="day")
    request = _request(_team_key(1, team, budget_tokens=1500, budget_period="day"), payload={"max_tokens": 1000})
    _, refused = _outcomes(_throttle(), [request, request])
    assert isinstance(refused, BudgetExceeded) and refused.detail.code == "key_budget_exceeded"
    assert (b"x-keygate-limit-scope", b"key") in refused.extra_headers


def test_a_teams_rpm_bounds_its_keys_together() -> None:
    team = Limits(rpm_limit=2)
    outcomes = _outcomes(_throttle(), [_request(_team_key(i, team, rpm_limit=100)) for i in (1, 2, 3)])
    assert [type(o).__name__ for o in outcomes] == ["Admission", "Admission", "RateLimited"]
    assert str(outcomes[2].detail).startswith("Rate limit reached for this team: 2 requests per minute")
    assert outcomes[2].limit == "team_requests"


def test_the_headers_report_the_scope_with_the_least_left() -> None:
    admission = _outcomes(_throttle(), [_request(_team_key(1, Limits(rpm_limit=10), rpm_limit=100))])[0]
    assert dict(admission.headers)[b"x-ratelimit-limit-requests"] == b"10"
    assert dict(admission.headers)[b"x-ratelimit-remaining-requests"] == b"9"


def test_a_team_without_counted_limits_adds_no_scope() -> None:
    admission = _outcomes(_throttle(), [_request(_team_key(1, Limits(), rpm_limit=5))])[0]
    assert [s.kind for s in admission.scopes] == ["key"]
    assert _outcomes(_throttle(), [_request(_team_key(1, Limits()))]) == [None]


def test_a_teams_budget_is_seeded_from_its_keys_usage() -> None:
    seed = Seed(tokens=2000)
    team = Limits(budget_tokens=2500, budget_period="day")
    outcomes = _outcomes(_throttle(seed=seed), [_request(_team_key(1, team), payload={"max_tokens": 1000})])
    assert isinstance(outcomes[0], BudgetExceeded)
    assert seed.calls == [("team", 3, datetime(2026, 11, 22, tzinfo=UTC))]


def test_settling_charges_the_key_and_its_team() -> None:
    throttle = _throttle()
    team = Limits(budget_tokens=1000, budget_period="day")
    request = _request(_team_key(1, team, budget_tokens=1000, budget_period="day"), payload={"max_tokens": 100})

    async def scenario():
        admission = await throttle.admit(request)
        await throttle.settle(admission, tokens=950, cost=Decimal(0))
        with pytest.raises(BudgetExceeded) as refused:
            await throttle.admit(request)
        return refused.value

    assert run(scenario()).detail.code == "key_budget_exceeded"  # the key is checked first; both are spent
    counters = throttle.store._budgets
    assert counters[("k1", "d20261122")].spent_tokens == counters[("t3", "d20261122")].spent_tokens == 950


# --- the stores: one admission over two scopes, memory and Redis -------------------------------


def test_a_refusal_by_the_team_reserves_nothing_for_the_key(store) -> None:  # noqa: F811
    key = Scope("key", 11, rpm=5, slot="t9")
    full_team = Scope("team", 9, max_parallel=1, slot="t9")

    async def scenario():
        await store.admit([Scope("key", 12, slot="t9"), full_team])
        refused = await store.admit([key, full_team])
        again = await store.admit([key])
        return refused, again

    refused, again = run(scenario())
    assert refused["refused"] == "parallel" and refused["scope"] == 1
    assert again["scopes"][0]["requests_remaining"] == pytest.approx(4, abs=0.01)  # only this one took a token


def test_an_admission_reserves_a_budget_in_both_scopes(store) -> None:  # noqa: F811
    budget = _budget(limit_tokens=100, estimate=60)
    key, team = Scope("key", 21, budget=budget, slot="t8"), Scope("team", 8, budget=budget, slot="t8")

    async def scenario():
        first = await store.admit([key, team])
        other_key = await store.admit([Scope("key", 22, budget=budget, slot="t8"), team])
        await store.settle([key, team], tokens=10, actual_cost=0.0)
        after = await store.admit([Scope("key", 22, budget=budget, slot="t8"), team])
        return first, other_key, after

    first, other_key, after = run(scenario())
    assert "refused" not in first
    assert other_key["refused"] == "budget_tokens" and other_key["scope"] == 1
    assert "refused" not in after  # 10 spent + 60 reserved ≤ 100


@pytest.mark.django_db
def test_a_teams_spending_is_the_usage_of_its_keys(make_key) -> None:
    from keys import services
    from keys.models import UsageRecord

    team = services.team_create(name="t")
    since = datetime(2026, 11, 22, tzinfo=UTC)
    in_team, _ = make_key(team=team)
    also, _ = make_key(name="also", team=team)
    personal, _ = make_key(name="personal")
    for key, tokens in ((in_team, 10), (also, 20), (personal, 1000)):
        UsageRecord.objects.create(
            key=key, created_at=since + timedelta(hours=1), endpoint="chat", status_code=200, input_tokens=tokens
        )
    assert budget_spent(team.pk, since, "team") == (30, 0.0)


# --- the team's models and networks --------------------------------------------------------------


def test_a_model_the_team_does_not_allow_is_a_403_naming_the_team() -> None:
    request = _request(_team_key(1), model="claude-3-opus")
    with pytest.raises(PermissionDenied) as denied:
        ModelInScope().has_permission(request, None)
    status, headers, body = render_error(Dialect.ANTHROPIC, denied.value, "req-1")
    assert status == 403 and (b"x-keygate-limit-scope", b"team") in headers
    assert b"This key's team may not use the model 'claude-3-opus'" in body


def test_a_model_the_key_does_not_allow_is_a_403_naming_the_key() -> None:
    request = _request(replace(_team_key(1), model_patterns=("gpt-4o",)), model="gpt-4o-mini")
    with pytest.raises(PermissionDenied) as denied:
        ModelInScope().has_permission(request, None)
    assert (b"x-keygate-limit-scope", b"key") in denied.value.extra_headers


def test_a_model_both_allow_is_permitted() -> None:
    assert ModelInScope().has_permission(_request(_team_key(1), model="gpt-4o"), None)


@pytest.mark.parametrize("dialect", [Dialect.OPENAI, Dialect.ANTHROPIC])
def test_a_team_budget_refusal_names_the_team_in_both_dialects(dialect) -> None:
    import json

    team = Limits(budget_tokens=10, budget_period="day")
    (refused,) = _outcomes(_throttle(), [_request(_team_key(1, team), dialect=dialect, payload={"max_tokens": 100})])
    status, headers, body = render_error(dialect, refused, "req-1")
    payload = json.loads(body)
    assert status == 429 and (b"x-keygate-limit-scope", b"team") in headers
    if dialect is Dialect.OPENAI:
        assert payload["error"]["code"] == "team_budget_exceeded"
        assert payload["error"]["type"] == "insufficient_quota"
    else:
        assert payload["error"]["message"].startswith("This team has used its token budget")


# --- the rate-limit headers when the key and its team both count --------------------------------


def _admitted_headers(throttle, state) -> dict[bytes, bytes]:
    admission = _outcomes(throttle, [_request(state)])[0]
    assert isinstance(admission, Admission)
    return dict(admission.headers)


def test_a_team_with_only_a_token_limit_leaves_the_keys_request_headers_in_place(clock) -> None:  # noqa: F811
    headers = _admitted_headers(_throttle(), _team_key(1, Limits(tpm_limit=5000), rpm_limit=10))
    assert headers[b"x-ratelimit-limit-requests"] == b"10"
    assert headers[b"x-ratelimit-remaining-requests"] == b"9"
    assert headers[b"x-ratelimit-limit-tokens"] == b"5000"


def test_a_team_with_only_a_request_limit_leaves_the_keys_token_headers_in_place(clock) -> None:  # noqa: F811
    headers = _admitted_headers(_throttle(), _team_key(1, Limits(rpm_limit=10), tpm_limit=5000))
    assert headers[b"x-ratelimit-limit-tokens"] == b"5000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"5000"
    assert headers[b"x-ratelimit-limit-requests"] == b"10"


def test_a_team_limiting_only_parallel_requests_leaves_the_keys_rate_limit_headers_as_they_are(clock) -> None:  # noqa: F811
    headers = _admitted_headers(_throttle(), _team_key(1, Limits(max_parallel=4), rpm_limit=10, tpm_limit=5000))
    assert headers == dict(_admitted_headers(_throttle(), _state(rpm_limit=10, tpm_limit=5000)))


def test_the_token_headers_report_the_team_when_it_has_fewer_tokens_left(clock) -> None:  # noqa: F811
    headers = _admitted_headers(_throttle(), _team_key(1, Limits(tpm_limit=2000), tpm_limit=5000))
    assert headers[b"x-ratelimit-limit-tokens"] == b"2000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"2000"


def test_the_token_headers_report_the_key_when_it_has_fewer_tokens_left(clock) -> None:  # noqa: F811
    headers = _admitted_headers(_throttle(), _team_key(1, Limits(tpm_limit=5000), tpm_limit=2000))
    assert headers[b"x-ratelimit-limit-tokens"] == b"2000"


def test_the_token_headers_report_the_team_once_other_keys_used_its_tokens(clock) -> None:  # noqa: F811
    throttle = _throttle()
    team = Limits(tpm_limit=5000)

    async def scenario():
        other = await throttle.admit(_request(_team_key(2, team)))
        await throttle.settle(other, tokens=4000, cost=Decimal(0))
        return await throttle.admit(_request(_team_key(1, team, tpm_limit=2000)))

    headers = dict(run(scenario()).headers)
    assert headers[b"x-ratelimit-limit-tokens"] == b"5000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"1000"


def test_when_key_and_team_have_as_many_requests_left_the_headers_report_the_keys_limit(clock) -> None:  # noqa: F811
    throttle = _throttle()
    team = Limits(rpm_limit=20)
    _outcomes(throttle, [_request(_team_key(i, team)) for i in range(2, 12)])  # the team has 10 left
    headers = _admitted_headers(throttle, _team_key(1, team, rpm_limit=10))  # both now have 9 left
    assert headers[b"x-ratelimit-limit-requests"] == b"10"
    assert headers[b"x-ratelimit-remaining-requests"] == b"9"
    assert headers[b"x-ratelimit-reset-requests"] == b"6s"


def test_when_key_and_team_have_as_many_tokens_left_the_headers_report_the_keys_limit(clock) -> None:  # noqa: F811
    throttle = _throttle()
    team = Limits(tpm_limit=2000)

    async def scenario():
        other = await throttle.admit(_request(_team_key(2, team)))
        await throttle.settle(other, tokens=1000, cost=Decimal(0))  # the team has 1000 left
        return await throttle.admit(_request(_team_key(1, team, tpm_limit=1000)))

    headers = dict(run(scenario()).headers)
    assert headers[b"x-ratelimit-limit-tokens"] == b"1000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"1000"
    assert headers[b"x-ratelimit-reset-tokens"] == b"0ms"


def test_a_teams_rpm_bounds_its_keys_together_on_either_store(store) -> None:  # noqa: F811
    team = Limits(rpm_limit=2)
    outcomes = _outcomes(_throttle(store), [_request(_team_key(i, team, rpm_limit=100)) for i in (1, 2, 3)])
    assert [type(o).__name__ for o in outcomes] == ["Admission", "Admission", "RateLimited"]
    assert outcomes[2].limit == "team_requests"


def test_a_budget_refusal_names_the_key_unless_told_it_is_the_teams() -> None:
    refused = BudgetExceeded("This key has used its token budget for the day.", wait=None)
    assert refused.detail.code == "key_budget_exceeded"
    assert (b"x-keygate-limit-scope", b"key") in refused.extra_headers
