"""gateway.authentication: what each refusal tells the caller, the debug header and the operator.

Beside tests/gateway/test_authentication.py (same harness: a real KeyCache over a fake key store
and a fake clock). These pin the parts a caller or an operator reads: the message of each
refusal, the X-Debug-Auth status, the 429's reason in metrics and usage records, and the
attempt counter's window edges.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.authentication import (
    INVALID_KEY_MESSAGE,
    MISSING_KEY_MESSAGE,
    AuthDecision,
    AuthenticationOverloaded,
    AuthFailuresThrottled,
    FailureCounter,
    KeyAuthentication,
)
from gateway.cache import KeyCache
from gateway.dialects import Dialect, render_error
from gateway.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from gateway.http import GatewayRequest
from keys import costly, crypto
from tests.gateway.test_authentication import Clock, Harness, _forged, _quietly, _request
from tests.gateway.test_cache import PREFIX, _state

# --- what the caller is told ------------------------------------------------------------------


def test_a_request_without_a_key_is_told_how_to_send_one() -> None:
    harness = Harness()

    with pytest.raises(NotAuthenticated) as refused:
        harness.run(lambda: harness.auth.aauthenticate(_request(None)))

    assert str(refused.value.detail) == MISSING_KEY_MESSAGE
    assert "Authorization: Bearer" in MISSING_KEY_MESSAGE and "x-api-key" in MISSING_KEY_MESSAGE


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param("sk-kg-" + "A" * 50, "malformed", id="bad-checksum"),
        pytest.param("nope", "malformed", id="garbage"),
        pytest.param(None, "invalid", id="well-formed-unknown"),
    ],
)
def test_a_key_that_is_not_ours_gets_the_one_generic_message_and_debug_auth_says_why(
    raw: str | None, status: str
) -> None:
    harness = Harness()
    request = _request(raw or crypto.generate_key(PREFIX)[1])

    with pytest.raises(AuthenticationFailed) as refused:
        harness.run(lambda: harness.auth.aauthenticate(request))

    assert str(refused.value.detail) == INVALID_KEY_MESSAGE
    assert request.auth_decision == AuthDecision(status)


def test_an_anthropic_request_authenticates_with_x_api_key_even_beside_another_bearer() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "headers": [(b"authorization", b"Bearer some-upstream-token"), (b"x-api-key", raw.encode())],
        "client": ("198.51.100.7", 50000),
    }
    request = GatewayRequest.from_scope(scope, Dialect.ANTHROPIC, "messages")

    assert harness.run(lambda: harness.status(request)) == 200


def test_a_key_refused_for_its_network_names_itself_and_its_scopes_in_debug_auth() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = _state(1, allowed_ips=("10.0.0.0/8",), model_patterns=("gpt-4o", "claude-*"))
    request = _request(raw, client="198.51.100.7")

    with pytest.raises(PermissionDenied):
        harness.run(lambda: harness.auth.aauthenticate(request))

    assert request.auth_decision == AuthDecision("ip_not_allowed", "public000001", ("gpt-4o", "claude-*"))


def test_a_key_refused_for_an_unknown_client_address_says_this_address() -> None:
    harness = Harness()
    raw = harness.store.add(1)
    harness.store.keys[raw] = _state(1, allowed_ips=("10.0.0.0/8",))

    with pytest.raises(PermissionDenied) as refused:
        harness.run(lambda: harness.auth.aauthenticate(_request(raw, client=None)))

    assert str(refused.value.detail) == "This key may not be used from this address."


def test_a_full_verification_line_says_overloaded_and_when_to_retry() -> None:
    harness = Harness()
    harness.store.fail_with = costly.Argon2Busy(retry_after=3)
    request = _request(crypto.generate_key(PREFIX)[1])

    with pytest.raises(AuthenticationOverloaded) as refused:
        harness.run(lambda: harness.auth.aauthenticate(request))

    status, headers, _ = render_error(Dialect.OPENAI, refused.value, "req-1")
    assert status == 503 and (b"retry-after", b"3") in headers
    assert request.auth_decision == AuthDecision("overloaded")


def test_too_many_failures_is_explained_and_counted_as_auth_failures() -> None:
    harness = Harness(per_address=1)

    async def scenario() -> AuthFailuresThrottled:
        await _quietly(harness, _request(crypto.generate_key(PREFIX)[1]))
        with pytest.raises(AuthFailuresThrottled) as refused:
            await harness.auth.aauthenticate(_request(crypto.generate_key(PREFIX)[1]))
        return refused.value

    refusal = harness.run(scenario)

    _, _, body = render_error(Dialect.OPENAI, refusal, "req-1")
    message = "Too many failed authentications from this address or for this key. Try again later."
    assert str(refusal.detail) == message and message.encode() in body
    assert refusal.limit == "auth_failures"  # the label of keygate_limit_refusals_total
    assert refusal.reason == "auth_failures"  # what the usage record and access log call it


def test_the_gateway_authenticates_on_the_event_loop_only() -> None:
    harness = Harness()

    with pytest.raises(NotImplementedError, match="aauthenticate"):
        harness.auth.authenticate(_request(harness.store.add(1)))
    harness.cache.close()


def test_drf_is_told_the_bearer_realm_so_a_refusal_is_401_not_403() -> None:
    harness = Harness()

    assert harness.auth.authenticate_header(_request(None)) == 'Bearer realm="keygate"'
    _, headers, _ = render_error(Dialect.OPENAI, AuthenticationFailed(INVALID_KEY_MESSAGE), "req-1")
    assert (b"www-authenticate", harness.auth.authenticate_header(_request(None)).encode()) in headers
    harness.cache.close()


def test_without_the_setting_the_per_key_guard_is_off(settings) -> None:
    del settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE
    cache = KeyCache(pepper=b"p", prefix=PREFIX, verify=lambda raw: None, load_state=lambda key_id: None)

    auth = KeyAuthentication(cache)

    assert auth.key_failures.limit == 0
    assert [auth.key_failures.take("AbCdEfGh1234") for _ in range(50)] == [0.0] * 50
    cache.close()


def test_a_revoked_key_gives_its_public_id_attempt_back_too() -> None:
    harness = Harness(per_address=1000, per_key=1)
    real = harness.store.add(1)
    harness.store.keys[real] = harness.store.states[1] = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> list[int]:
        return [await harness.status(_request(real)), await harness.status(_request(_forged(real, 1)))]

    assert harness.run(scenario) == [401, 401]  # the forged key was verified (401), not refused (429)
    assert harness.store.verify_calls == 2


# --- the attempt counter's edges ----------------------------------------------------------------


def test_a_window_ends_exactly_window_seconds_after_it_started() -> None:
    clock = Clock()
    counter = FailureCounter(1, window=60, clock=clock)
    counter.take("a")

    clock.now += 60
    assert counter.take("a") == 0.0  # a new window, its first attempt
    clock.now += 1
    assert counter.take("a") == 59.0  # counted in the new window


def test_a_given_back_attempt_keeps_its_window() -> None:
    clock = Clock()
    counter = FailureCounter(2, window=60, clock=clock)
    counter.take("a"), counter.take("a")
    clock.now += 10

    counter.give_back("a")

    assert counter.take("a") == 0.0
    assert counter.take("a") == 50.0  # the window still started at the first attempt


def test_a_full_counter_forgets_only_ended_windows_and_keeps_the_live_ones() -> None:
    clock = Clock()
    counter = FailureCounter(1, window=60, max_names=2, clock=clock)
    counter.take("a")
    clock.now += 30
    counter.take("b")
    clock.now += 30  # a's window has just ended, b's is half way

    counter.take("c")

    assert counter.take("b") == 30.0 and counter.take("c") == 60.0


def test_a_counter_remembers_a_hundred_thousand_names_by_default() -> None:
    counter = FailureCounter(1, clock=Clock())
    for n in range(100_000):
        counter.take(f"198.51.{n // 256}.{n % 256}")

    counter.take("one-too-many")

    assert counter.take("198.51.0.0") == 0.0  # forgotten when the 100 001st name came
    assert counter.take("one-too-many") > 0
