"""gateway.cache.KeyCache: one verification per key per process, failures remembered, state fresh.

``verify`` and ``load_state`` are fakes that count their calls (and sleep a little, as argon2
and a query would), so these tests need no database.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.cache import KeyCache
from keys import crypto
from keys.services import KeyState

PREFIX = "sk-kg"


def _state(key_id: int = 1, **changes: Any) -> KeyState:
    state = KeyState(
        id=key_id,
        public_id=f"public{key_id:06d}",
        name="test",
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
    return replace(state, **changes)


class FakeStore:
    """Known keys → states; counts verify() and load_state() calls (thread-safe)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.keys: dict[str, KeyState] = {}
        self.states: dict[int, KeyState | None] = {}
        self.verify_calls = 0
        self.load_calls = 0
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def add(self, key_id: int) -> str:
        _, raw = crypto.generate_key(PREFIX)
        self.keys[raw] = self.states[key_id] = _state(key_id)
        return raw

    def verify(self, raw: str) -> KeyState | None:
        with self._lock:
            self.verify_calls += 1
        time.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        return self.keys.get(raw)

    def load_state(self, key_id: int) -> KeyState | None:
        with self._lock:
            self.load_calls += 1
        time.sleep(self.delay / 5)
        return self.states.get(key_id)


def _cache(store: FakeStore, **options: Any) -> KeyCache:
    options = {"state_ttl": 60.0, "negative_ttl": 60.0, **options}
    return KeyCache(pepper=b"pepper", prefix=PREFIX, verify=store.verify, load_state=store.load_state, **options)


def _run(cache: KeyCache, scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``scenario()`` on a fresh event loop (bounded), then close the cache's threads."""

    async def main() -> Any:
        return await asyncio.wait_for(scenario(), timeout=10)

    try:
        return asyncio.run(main())
    finally:
        cache.close()


def test_200_concurrent_first_requests_of_one_key_cost_exactly_one_verification() -> None:
    store = FakeStore(delay=0.05)
    raw = store.add(1)
    cache = _cache(store)

    results = _run(cache, lambda: asyncio.gather(*(cache.authenticate(raw) for _ in range(200))))

    assert store.verify_calls == 1
    assert cache.stats.verifications == 1
    assert {state for state, _ in results} == {store.keys[raw]}


def test_concurrent_first_requests_of_different_keys_verify_each_key_once() -> None:
    store = FakeStore(delay=0.05)
    raws = [store.add(key_id) for key_id in range(1, 6)]
    cache = _cache(store)

    results = _run(cache, lambda: asyncio.gather(*(cache.authenticate(raw) for raw in raws * 20)))

    assert store.verify_calls == 5
    assert [state.id for state, _ in results] == list(range(1, 6)) * 20


def test_a_verified_key_is_then_served_from_memory() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)

    async def scenario() -> list[str]:
        return [(await cache.authenticate(raw))[1] for _ in range(3)]

    assert _run(cache, scenario) == ["verified", "cached", "cached"]
    assert (store.verify_calls, store.load_calls) == (1, 0)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-key", id="garbage"),
        pytest.param("sk-kg-" + "A" * 50, id="bad-checksum"),
        pytest.param("sk-other-" + "A" * 50, id="other-prefix"),
    ],
)
def test_a_malformed_key_is_refused_without_any_verification(raw: str) -> None:
    store = FakeStore()
    cache = _cache(store)

    state, how = _run(cache, lambda: cache.authenticate(raw))

    assert (state, how) == (None, "malformed")
    assert store.verify_calls == 0


def test_a_typo_in_a_real_key_is_caught_by_the_checksum() -> None:
    store = FakeStore()
    raw = store.add(1)
    typo = raw[:-10] + ("a" if raw[-10] != "a" else "b") + raw[-9:]
    cache = _cache(store)

    assert _run(cache, lambda: cache.authenticate(typo)) == (None, "malformed")
    assert store.verify_calls == 0


def test_a_key_that_failed_is_refused_from_memory_within_the_negative_ttl() -> None:
    store = FakeStore()
    _, unknown = crypto.generate_key(PREFIX)
    cache = _cache(store)

    async def scenario() -> list[tuple[KeyState | None, str]]:
        return [await cache.authenticate(unknown) for _ in range(3)]

    assert _run(cache, scenario) == [(None, "verified"), (None, "invalid"), (None, "invalid")]
    assert store.verify_calls == 1
    assert cache.stats.negative_hits == 2


def test_concurrent_requests_with_one_wrong_key_cost_one_verification() -> None:
    store = FakeStore(delay=0.05)
    _, unknown = crypto.generate_key(PREFIX)
    cache = _cache(store)

    results = _run(cache, lambda: asyncio.gather(*(cache.authenticate(unknown) for _ in range(200))))

    assert store.verify_calls == 1
    assert {state for state, _ in results} == {None}


def test_a_key_that_failed_is_verified_again_after_the_negative_ttl() -> None:
    store = FakeStore()
    _, unknown = crypto.generate_key(PREFIX)
    cache = _cache(store, negative_ttl=0.05)

    async def scenario() -> None:
        await cache.authenticate(unknown)
        await asyncio.sleep(0.08)
        await cache.authenticate(unknown)

    _run(cache, scenario)

    assert store.verify_calls == 2


def test_state_older_than_its_ttl_is_read_again_before_answering() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store, state_ttl=0.1)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        store.states[1] = revoked
        await asyncio.sleep(0.12)
        return await cache.authenticate(raw)

    assert _run(cache, scenario) == (revoked, "refreshed")
    assert (store.verify_calls, store.load_calls) == (1, 1)


def test_state_past_half_its_ttl_is_refreshed_in_the_background() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store, state_ttl=0.4)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> list[tuple[KeyState | None, str]]:
        first = await cache.authenticate(raw)
        store.states[1] = revoked
        await asyncio.sleep(0.22)
        stale = await cache.authenticate(raw)  # answered at once; a refresh starts
        await asyncio.sleep(0.05)
        fresh = await cache.authenticate(raw)
        return [first, stale, fresh]

    first, stale, fresh = _run(cache, scenario)

    assert stale == (first[0], "cached")
    assert fresh == (revoked, "cached")
    assert store.load_calls == 1


def test_drop_makes_the_next_request_read_the_state_without_verifying_again() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        store.states[1] = revoked
        cache.drop(1)
        return await cache.authenticate(raw)

    assert _run(cache, scenario) == (revoked, "refreshed")
    assert (store.verify_calls, store.load_calls) == (1, 1)


def test_drop_of_an_unknown_key_is_harmless() -> None:
    store = FakeStore()
    cache = _cache(store)

    cache.drop(12345)
    cache.close()


def test_a_key_whose_state_disappeared_is_verified_again() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        del store.keys[raw]
        store.states[1] = None  # deleted from the database
        cache.drop(1)
        return await cache.authenticate(raw)

    assert _run(cache, scenario) == (None, "verified")
    assert store.verify_calls == 2


def test_a_verification_error_reaches_every_waiter_and_is_not_remembered() -> None:
    store = FakeStore(delay=0.05)
    raw = store.add(1)
    store.fail_with = RuntimeError("database is down")
    cache = _cache(store)

    async def scenario() -> tuple[list[Any], tuple[KeyState | None, str]]:
        failures = await asyncio.gather(*(cache.authenticate(raw) for _ in range(20)), return_exceptions=True)
        store.fail_with = None
        return failures, await cache.authenticate(raw)

    failures, retry = _run(cache, scenario)

    assert all(isinstance(failure, RuntimeError) for failure in failures)
    assert retry == (store.keys[raw], "verified")
    assert store.verify_calls == 2


def test_the_cache_keeps_no_plaintext_key() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)

    _run(cache, lambda: cache.authenticate(raw))

    held = [*cache._ids, *cache._negative, *cache._inflight]
    assert held and all(isinstance(item, bytes) and raw.encode() not in item for item in held)
    assert raw not in repr(cache.__dict__)
