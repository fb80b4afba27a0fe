"""gateway.authentication: the credential, the order of checks, and attempts counted before the work.

In process: a real :class:`~gateway.cache.KeyCache` over a fake key store that counts its verify
calls (the stand-in for argon2), and a fake clock for the attempt counters. No database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.authentication import (
    INVALID_KEY_MESSAGE,
    AuthDecision,
    AuthenticationOverloaded,
    AuthFailuresThrottled,
    FailureCounter,
    KeyAuthentication,
    credential,
)
from gateway.cache import KeyCache
from gateway.dialects import Dialect, render_error
from gateway.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from gateway.http import GatewayRequest
from keys import costly, crypto
from tests.gateway.test_cache import PREFIX, FakeStore, _state

OFFICE = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(
    key: str | None = None, *, header: str = "authorization", client: str | None = OFFICE, **extra: str
) -> GatewayRequest:
    headers = []
    if key is not None:
        headers.append((header.encode(), (f"Bearer {key}" if header == "authorization" else key).encode()))
    headers.extend((name.replace("_", "-").encode(), value.encode()) for name, value in extra.items())
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
    if client is not None:
        scope["client"] = (client, 50000)
    return GatewayRequest.from_scope(scope, Dialect.OPENAI, "chat/completions")


def _forged(real: str, n: int) -> str:
    """A well-formed key (valid checksum) naming ``real``'s public id, with a wrong secret."""
    head = real[: len(PREFIX) + 1 + 12] + f"{n:032d}"
    return head + crypto.checksum(head)


class Harness:
    """A KeyAuthentication over a KeyCache over a FakeStore, with limits given per test."""

    def __init__(self, per_address: int = 30, per_key: int = 10, **cache_options: Any) -> None:
        self.store = FakeStore()
        self.clock = Clock()
        self.cache = KeyCache(
            pepper=b"pepper",
            prefix=PREFIX,
            verify=self.store.verify,
            load_state=self.store.load_state,
            state_ttl=60.0,
            negative_ttl=60.0,
            **cache_options,
        )
        self.failures = FailureCounter(per_address, clock=self.clock)
        self.auth = KeyAuthentication(self.cache, self.failures, FailureCounter(per_key, clock=self.clock))

    async def status(self, request: GatewayRequest) -> int:
        try:
            await self.auth.aauthenticate(request)
        except Exception as error:
            return getattr(error, "status_code", 500)
        return 200

    def run(self, scenario: Any) -> Any:
        async def main() -> Any:
            return await asyncio.wait_for(scenario(), timeout=10)

        try:
            return asyncio.run(main())
        finally:
            self.cache.close()


# --- the credential ------------------------------------------------------------------------------


def test_bearer_is_the_credential_on_openai_endpoints() -> None:
    request = _request("sk-kg-bearer", x_api_key="sk-kg-header")

    assert credential(request, prefer_api_key_header=False) == "sk-kg-bearer"


def test_x_api_key_is_preferred_when_the_protocol_says_so() -> None:
    request = _request("sk-kg-bearer", x_api_key="sk-kg-header")

    assert credential(request, prefer_api_key_header=True) == "sk-kg-header"


def test_x_api_key_alone_is_a_credential_on_openai_endpoints_too() -> None:
    assert credential(_request("sk-kg-header", header="x-api-key"), prefer_api_key_header=False) == "sk-kg-header"


def test_bearer_alone_is_a_credential_on_anthropic_endpoints_too() -> None:
    assert credential(_request("sk-kg-bearer"), prefer_api_key_header=True) == "sk-kg-bearer"


@pytest.mark.parametrize(
    "authorization",
    [pytest.param("Basic abc", id="other-scheme"), pytest.param("Bearer ", id="empty"), pytest.param("", id="blank")],
)
def test_no_usable_credential_is_none(authorization: str) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "headers": [(b"authorization", authorization.encode())],
    }
    request = GatewayRequest.from_scope(scope, Dialect.OPENAI, "models")

    assert credential(request, prefer_api_key_header=False) is None


def test_the_bearer_scheme_is_case_insensitive_and_the_value_is_trimmed() -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"authorization", b"bEaReR   sk-kg-x  ")]}

    assert credential(GatewayRequest.from_scope(scope, Dialect.OPENAI, ""), prefer_api_key_header=False) == "sk-kg-x"


# --- the order of checks -------------------------------------------------------------------------


def test_a_valid_key_authenticates_and_says_ok_to_debug_auth() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    request = _request(raw)

    _, state = harness.run(lambda: harness.auth.aauthenticate(request))

    assert state == harness.store.keys[raw]
    assert request.auth_decision == AuthDecision("ok", state.public_id, ("*",))


def test_an_x_api_key_credential_authenticates() -> None:
    harness = Harness()
    raw = harness.store.add(1)

    assert harness.run(lambda: harness.status(_request(raw, header="x-api-key"))) == 200


def test_no_credential_is_401_not_authenticated() -> None:
    harness = Harness()
    request = _request(None)

    with pytest.raises(NotAuthenticated):
        harness.run(lambda: harness.auth.aauthenticate(request))
    assert request.auth_decision.status == "missing"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"revoked_at": datetime.now(UTC)}, "revoked", id="revoked"),
        pytest.param({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, "expired", id="expired"),
        pytest.param({"owner_is_active": False}, "owner_disabled", id="owner-disabled"),
    ],
)
def test_an_inactive_key_is_401_with_its_reason_only_in_debug_auth(change: dict, reason: str) -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = harness.store.states[1] = _state(1, **change)
    request = _request(raw)

    with pytest.raises(AuthenticationFailed) as refused:
        harness.run(lambda: harness.auth.aauthenticate(request))

    assert str(refused.value.detail) == INVALID_KEY_MESSAGE
    assert request.auth_decision.status == reason


def test_a_key_expiring_in_the_future_still_works() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = _state(1, expires_at=datetime.now(UTC) + timedelta(hours=1))

    assert harness.run(lambda: harness.status(_request(raw))) == 200


def test_an_unknown_key_is_401_invalid() -> None:
    harness = Harness()
    request = _request(crypto.generate_key(PREFIX)[1])

    with pytest.raises(AuthenticationFailed):
        harness.run(lambda: harness.auth.aauthenticate(request))
    assert request.auth_decision.status == "invalid"


def test_a_key_from_outside_its_allowed_networks_is_403() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = _state(1, allowed_ips=("10.0.0.0/8",))
    request = _request(raw, client="198.51.100.7")

    with pytest.raises(PermissionDenied) as refused:
        harness.run(lambda: harness.auth.aauthenticate(request))

    assert "198.51.100.7" in str(refused.value.detail)
    assert request.auth_decision.status == "ip_not_allowed"


def test_a_key_from_inside_its_allowed_networks_works() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = _state(1, allowed_ips=("10.0.0.0/8", "2001:db8::/32"))

    async def scenario() -> list[int]:
        return [await harness.status(_request(raw, client=ip)) for ip in ("10.1.2.3", "2001:db8::1", "11.0.0.1")]

    assert harness.run(scenario) == [200, 200, 403]


def test_debug_auth_headers_name_the_key_and_its_scopes_never_a_secret() -> None:
    decision = AuthDecision("ok", "AbCdEfGh1234", ("gpt-4o", "claude-*"))

    assert decision.headers() == [
        (b"x-keygate-auth-status", b"ok"),
        (b"x-keygate-auth-key-id", b"AbCdEfGh1234"),
        (b"x-keygate-auth-scopes", b"gpt-4o,claude-*"),
    ]
    assert AuthDecision("missing").headers() == [(b"x-keygate-auth-status", b"missing")]


# --- attempts counted before the work (issue #10 findings 1 and 5) --------------------------------


def test_300_concurrent_forged_keys_for_one_public_id_from_one_address_cost_at_most_the_per_key_limit() -> None:
    harness = Harness(per_address=30, per_key=10)
    real = harness.store.add(1)

    async def scenario() -> list[int]:
        return await asyncio.gather(*(harness.status(_request(_forged(real, n))) for n in range(300)))

    statuses = harness.run(scenario)

    print(f"\n300 concurrent forged keys, one public id, one address: {harness.store.verify_calls} verifications")
    assert harness.store.verify_calls == 10
    assert statuses.count(401) == 10 and statuses.count(429) == 290


def test_concurrent_attempts_from_one_address_stop_at_its_limit() -> None:
    harness = Harness(per_address=30, per_key=1000)

    async def scenario() -> list[int]:
        return await asyncio.gather(*(harness.status(_request(crypto.generate_key(PREFIX)[1])) for _ in range(100)))

    statuses = harness.run(scenario)

    assert harness.store.verify_calls == 30
    assert statuses.count(401) == 30 and statuses.count(429) == 70


def test_a_public_id_under_attack_refuses_new_keys_naming_it_from_any_address() -> None:
    harness = Harness(per_address=1000, per_key=3)
    real = harness.store.add(1)

    async def scenario() -> list[int]:
        forged = [await harness.status(_request(_forged(real, n), client=f"203.0.113.{n}")) for n in range(5)]
        return [*forged, await harness.status(_request(real, client="192.0.2.1"))]

    assert harness.run(scenario) == [401, 401, 401, 429, 429, 429]
    assert harness.store.verify_calls == 3


def test_the_holder_of_a_key_verified_here_is_unaffected_by_an_attack_on_its_public_id() -> None:
    harness = Harness(per_address=5, per_key=3)
    real = harness.store.add(1)

    async def scenario() -> list[int]:
        first = await harness.status(_request(real))
        attack = await asyncio.gather(*(harness.status(_request(_forged(real, n))) for n in range(50)))
        return [first, *set(attack), await harness.status(_request(real))]

    first, *attack, after = harness.run(scenario)

    assert first == 200 and after == 200
    assert set(attack) == {401, 429}


def test_a_refusal_says_when_to_retry_and_is_rendered_as_429_with_retry_after() -> None:
    harness = Harness(per_address=1)
    harness.run(lambda: _quietly(harness, _request(crypto.generate_key(PREFIX)[1])))
    harness.clock.now += 15
    request = _request(crypto.generate_key(PREFIX)[1])

    with pytest.raises(AuthFailuresThrottled) as refused:
        asyncio.run(harness.auth.aauthenticate(request))

    status, headers, body = render_error(Dialect.OPENAI, refused.value, "req-1")
    assert status == 429 and (b"retry-after", b"45") in headers
    assert b"too_many_failed_authentications" in body
    assert request.auth_decision.status == "throttled"


def test_malformed_keys_never_count_against_an_address() -> None:
    harness = Harness(per_address=5)
    real = harness.store.add(1)
    garbage = ["nope", "sk-kg-" + "A" * 50, real[:-1] + ("A" if real[-1] != "A" else "B"), "x" * 4096]

    async def scenario() -> int:
        for _ in range(10):
            for bad in garbage:
                assert await harness.status(_request(bad)) == 401
        return await harness.status(_request(real))  # a key this process has never seen

    assert harness.run(scenario) == 200
    assert harness.store.verify_calls == 1


def test_a_real_key_gives_its_attempt_back() -> None:
    harness = Harness(per_address=2, per_key=2)
    keys = [harness.store.add(n) for n in range(1, 6)]

    async def scenario() -> list[int]:
        return [await harness.status(_request(raw)) for raw in keys]

    assert harness.run(scenario) == [200] * 5  # five first uses from one address, limit 2: none refused


def test_a_revoked_key_proves_possession_and_is_not_counted_as_a_guess() -> None:
    harness = Harness(per_address=2)
    revoked = harness.store.add(1)
    harness.store.keys[revoked] = harness.store.states[1] = _state(1, revoked_at=datetime.now(UTC))
    fresh = harness.store.add(2)

    async def scenario() -> list[int]:
        statuses = [await harness.status(_request(revoked)) for _ in range(5)]  # an old cron job
        return [*statuses, await harness.status(_request(fresh))]

    assert harness.run(scenario) == [401] * 5 + [200]


def test_a_failed_guess_stays_counted() -> None:
    harness = Harness(per_address=2)
    real = harness.store.add(1)

    async def scenario() -> list[int]:
        guesses = [await harness.status(_request(crypto.generate_key(PREFIX)[1])) for _ in range(2)]
        return [*guesses, await harness.status(_request(real))]

    assert harness.run(scenario) == [401, 401, 429]


def test_a_full_verification_line_is_503_with_retry_after_and_gives_the_attempt_back() -> None:
    harness = Harness(per_address=2)
    harness.store.fail_with = costly.Argon2Busy(retry_after=3)

    async def scenario() -> list[int]:
        return [await harness.status(_request(crypto.generate_key(PREFIX)[1])) for _ in range(4)]

    assert harness.run(scenario) == [503] * 4  # never 429: a refused verify checked nothing
    request = _request(crypto.generate_key(PREFIX)[1])
    error = AuthenticationOverloaded(2.2)
    status, headers, body = render_error(Dialect.ANTHROPIC, error, "req-1")
    assert status == 503 and (b"retry-after", b"3") in headers and b"overloaded_error" in body
    assert request.auth_decision is None


def test_the_gateway_refuses_at_once_when_too_many_verifications_are_pending() -> None:
    harness = Harness(per_address=1000, per_key=1000, max_pending=4)
    harness.store.delay = 0.2

    async def scenario() -> list[int]:
        return await asyncio.gather(*(harness.status(_request(crypto.generate_key(PREFIX)[1])) for _ in range(10)))

    statuses = harness.run(scenario)

    assert statuses.count(401) == 4 and statuses.count(503) == 6
    assert harness.store.verify_calls == 4


# --- the per-address counter ---------------------------------------------------------------------


def test_the_counter_admits_limit_attempts_per_window_then_says_how_long_to_wait() -> None:
    clock = Clock()
    counter = FailureCounter(3, window=60, clock=clock)

    waits = [counter.take("a") for _ in range(3)]
    clock.now += 20
    refused = counter.take("a")

    assert waits == [0.0, 0.0, 0.0] and refused == 40.0
    assert counter.blocked_for("a") == 40.0 and counter.blocked_for("b") == 0.0
    clock.now += 40
    assert counter.take("a") == 0.0 and counter.blocked_for("a") == 0.0


def test_the_counter_below_its_limit_blocks_nobody() -> None:
    counter = FailureCounter(3, clock=Clock())
    counter.take("a"), counter.take("a")

    assert counter.blocked_for("a") == 0.0


def test_a_given_back_attempt_frees_its_place_but_never_goes_below_zero() -> None:
    counter = FailureCounter(1, clock=Clock())
    counter.give_back("never-seen")
    counter.take("a")

    counter.give_back("a")
    counter.give_back("a")

    assert counter.take("a") == 0.0 and counter.take("a") > 0


def test_a_counter_with_limit_zero_counts_nothing() -> None:
    counter = FailureCounter(0, clock=Clock())

    assert [counter.take("a") for _ in range(100)] == [0.0] * 100
    assert counter.blocked_for("a") == 0.0


def test_the_counter_forgets_old_windows_when_it_is_full() -> None:
    clock = Clock()
    counter = FailureCounter(1, window=60, max_names=3, clock=clock)
    for name in "abc":
        counter.take(name)
    clock.now += 61

    counter.take("d")

    assert set(counter._counts) == {"d"}


def test_a_full_counter_of_live_windows_starts_again_rather_than_growing() -> None:
    counter = FailureCounter(1, max_names=3, clock=Clock())
    for name in "abc":
        counter.take(name)

    counter.take("d")

    assert set(counter._counts) == {"d"}
    assert counter.take("a") == 0.0  # what was forgotten may try again: cost-bounded, not exact


async def _quietly(harness: Harness, request: GatewayRequest) -> None:
    try:
        await harness.auth.aauthenticate(request)
    except Exception:
        pass


def test_the_per_key_limit_defaults_to_the_setting(settings) -> None:
    settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE = 7
    cache = KeyCache(pepper=b"p", prefix=PREFIX, verify=lambda raw: None, load_state=lambda key_id: None)

    auth = KeyAuthentication(cache)

    assert auth.key_failures.limit == 7 and auth.failures.limit == 0
    cache.close()


@pytest.mark.parametrize(
    ("allowed", "client", "expected"),
    [
        pytest.param((), None, True, id="no-networks-anyone"),
        pytest.param(("10.0.0.0/8",), "10.255.255.255", True, id="inside"),
        pytest.param(("10.0.0.0/8",), "11.0.0.0", False, id="outside"),
        pytest.param(("10.0.0.0/8",), None, False, id="unknown-address"),
        pytest.param(("10.0.0.0/8",), "not-an-ip", False, id="unparsable-address"),
        pytest.param(("10.0.0.0/8", "192.0.2.7/32"), "192.0.2.7", True, id="second-network"),
        pytest.param(("2001:db8::/32",), "10.0.0.1", False, id="other-family"),
    ],
)
def test_the_one_allowed_networks_rule(allowed: tuple[str, ...], client: str | None, expected: bool) -> None:
    assert _state(1, allowed_ips=allowed).ip_allowed(client) is expected


def test_200_concurrent_first_uses_of_a_real_key_all_succeed_whatever_the_limits() -> None:
    harness = Harness(per_address=2, per_key=2)
    harness.store.delay = 0.05
    raw = harness.store.add(1)

    async def scenario() -> list[int]:
        return await asyncio.gather(*(harness.status(_request(raw)) for _ in range(200)))

    assert harness.run(scenario) == [200] * 200  # they share one verification: one attempt, given back
    assert harness.store.verify_calls == 1


def test_a_wrong_key_refused_from_memory_is_not_counted_again() -> None:
    harness = Harness(per_address=2)
    wrong = crypto.generate_key(PREFIX)[1]

    async def scenario() -> list[int]:
        repeated = [await harness.status(_request(wrong)) for _ in range(10)]
        return [*repeated, await harness.status(_request(crypto.generate_key(PREFIX)[1]))]

    assert harness.run(scenario) == [401] * 11  # one attempt counted for the repeats, one for the new guess
    assert harness.store.verify_calls == 2
