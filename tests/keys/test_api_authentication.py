"""keys.api.authentication: management keys on /api/v1/ — argon2 once per process, attempts
counted before the work, allowed networks checked, a full argon2 line refused with 503."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from keys import costly, crypto, services
from keys.api import authentication

# The management API counts failures in fixed one-minute windows: tests that count up to a limit
# stop the clock mid-minute, or guesses that straddle a minute's end split over two windows.
MID_MINUTE = "2026-01-01 12:00:30+00:00"

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/keys/"


@pytest.fixture
def argon2_runs(monkeypatch) -> list[str]:
    """Every argon2 verify of a key, counted (its raw key is not kept: only the public id)."""
    runs: list[str] = []
    original = crypto.verify_key_hash

    def counted(hasher, stored_hash, raw):
        runs.append(raw[6:18])
        return original(hasher, stored_hash, raw)

    monkeypatch.setattr(crypto, "verify_key_hash", counted)
    return runs


def _get(raw: str, ip: str = "198.51.100.9"):
    return Client().get(KEYS, HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=ip)


def _guess(real: str, n: int) -> str:
    head = real[:18] + f"{n:032d}"
    return head + crypto.checksum(head)


def test_a_management_key_costs_argon2_once_per_process(alice, argon2_runs) -> None:
    _, raw = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)

    statuses = [_get(raw).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert len(argon2_runs) == 1


def test_a_cached_management_key_is_refused_at_once_when_revoked(alice) -> None:
    key, raw = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)
    assert _get(raw).status_code == 200

    services.key_revoke(key=key)

    assert _get(raw).status_code == 401


def test_a_deleted_management_key_is_forgotten(alice) -> None:
    key, raw = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)
    assert _get(raw).status_code == 200

    key.delete()

    assert _get(raw).status_code == 401
    assert not authentication.verified_keys().knows(raw)


def test_a_management_key_is_refused_from_outside_its_allowed_networks(alice) -> None:
    _, raw = services.key_create(
        name="ci", model_patterns=[], owner=alice, is_management=True, allowed_ips=["10.0.0.0/8"]
    )

    outside = _get(raw, ip="198.51.100.9")
    inside = _get(raw, ip="10.20.30.40")

    assert outside.status_code == 403 and "address" in outside.json()["detail"]
    assert inside.status_code == 200


def test_malformed_keys_never_count_against_an_address(alice, argon2_runs) -> None:
    _, raw = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)

    garbage = [_get(bad).status_code for bad in ["nope", "sk-kg-" + "A" * 50] * 40]

    assert set(garbage) == {401}
    assert _get(raw).status_code == 200
    assert len(argon2_runs) == 1


def test_guesses_for_one_public_id_cost_argon2_at_most_the_per_key_limit(alice, settings, argon2_runs) -> None:
    _, real = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)

    with time_machine.travel(MID_MINUTE, tick=False):
        statuses = [_get(_guess(real, n), ip=f"203.0.113.{n}").status_code for n in range(30)]

    limit = settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE
    assert statuses == [401] * limit + [429] * (30 - limit)
    assert len(argon2_runs) == limit


def test_a_throttled_guess_says_when_to_retry(alice) -> None:
    with time_machine.travel(MID_MINUTE, tick=False):
        for _ in range(30):
            _get(crypto.generate_key("sk-kg")[1])

        refused = _get(crypto.generate_key("sk-kg")[1])

    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60


def test_a_full_argon2_line_is_503_with_retry_after_and_not_counted(alice, monkeypatch) -> None:
    _, raw = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)
    full = costly.Argon2Limiter(max_concurrent=1, memory_kib=1, max_queued=0, max_wait=0, retry_after=2)
    monkeypatch.setattr(costly, "argon2_limiter", lambda: full)
    full.acquire(1)  # someone else's argon2 is running

    refused = [_get(raw) for _ in range(40)]

    assert {response.status_code for response in refused} == {503}
    assert refused[0]["Retry-After"] == "2"
    full.release(1)
    assert _get(raw).status_code == 200  # 40 refusals, none counted as a failure
