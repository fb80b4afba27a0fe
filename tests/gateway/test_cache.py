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
from keys import costly, crypto
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


# --- stale-while-revalidate, drops, and bounds (issue #10 findings 1 and 2) -------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatedStore(FakeStore):
    """A FakeStore whose verify() and load_state() block until the test opens their gates."""

    def __init__(self) -> None:
        super().__init__()
        self.verify_gate = threading.Event()
        self.load_gate = threading.Event()
        self.load_gate.set()
        self.loads_started = 0

    def verify(self, raw: str) -> KeyState | None:
        self.verify_gate.wait(10)
        return super().verify(raw)

    def load_state(self, key_id: int) -> KeyState | None:
        self.loads_started += 1
        self.load_gate.wait(10)
        return super().load_state(key_id)


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_fresh_state_is_served_without_any_read() -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> list[str]:
        await cache.authenticate(raw)
        clock.now += 0.49
        return [(await cache.authenticate(raw))[1] for _ in range(10)]

    assert _run(cache, scenario) == ["cached"] * 10
    assert store.load_calls == 0


def test_many_requests_past_half_the_ttl_start_exactly_one_background_refresh() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> list[str]:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        hows = [(await cache.authenticate(raw))[1] for _ in range(50)]
        store.load_gate.set()
        await _until(lambda: not cache._reads)
        return hows

    assert _run(cache, scenario) == ["cached"] * 50
    assert store.load_calls == 1 and cache.stats.state_reads == 1


def test_past_its_ttl_a_key_whose_refresh_is_pending_is_served_stale_without_waiting() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, max_stale=3.0, clock=clock)

    async def scenario() -> tuple[list[str], KeyState | None]:
        first, _ = await cache.authenticate(raw)
        store.load_gate.clear()  # the database is slow
        clock.now += 0.6
        await cache.authenticate(raw)  # starts the refresh
        clock.now += 1.0  # 1.6 s: past the TTL, the refresh still pending
        hows = [(await cache.authenticate(raw))[1] for _ in range(20)]
        store.load_gate.set()
        await _until(lambda: not cache._reads)
        return hows, first

    hows, _ = _run(cache, scenario)

    assert hows == ["cached"] * 20 and cache.stats.stale_hits == 20
    assert store.load_calls == 1


def test_stale_state_is_never_served_past_max_stale() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, max_stale=3.0, clock=clock)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)  # refresh pending
        clock.now += 2.5  # 3.1 s since the last read: too stale to serve
        store.states[1] = revoked
        waiting = asyncio.ensure_future(cache.authenticate(raw))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # it waits for a read rather than answering from stale state
        store.load_gate.set()
        return await waiting

    state, how = _run(cache, scenario)

    assert how == "refreshed"
    assert state is not None


def test_past_its_ttl_an_idle_key_waits_for_a_fresh_read() -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        store.states[1] = revoked
        clock.now += 1.0
        return await cache.authenticate(raw)

    assert _run(cache, scenario) == (revoked, "refreshed")


def test_concurrent_requests_past_the_ttl_share_one_state_read() -> None:
    store, clock = FakeStore(delay=0.05), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> set[str]:
        await cache.authenticate(raw)
        clock.now += 5
        return {how for _, how in await asyncio.gather(*(cache.authenticate(raw) for _ in range(30)))}

    assert _run(cache, scenario) == {"refreshed"}
    assert store.load_calls == 1


def test_a_drop_during_a_refresh_keeps_the_old_state_from_coming_back() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)
    revoked = _state(1, revoked_at=datetime.now(UTC))

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)  # a refresh starts and reads the state from before the revocation
        await _until(lambda: store.loads_started == 1)
        cache.drop(1)  # the revocation is announced
        store.states[1] = revoked
        store.load_gate.set()
        await asyncio.sleep(0.05)  # the outdated read completes
        return await cache.authenticate(raw)

    assert _run(cache, scenario) == (revoked, "refreshed")


def test_a_deleted_key_is_forgotten_and_then_refused_from_memory() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)

    async def scenario() -> list[tuple[KeyState | None, str]]:
        await cache.authenticate(raw)
        del store.keys[raw]
        store.states[1] = None
        cache.drop(1)
        return [await cache.authenticate(raw), await cache.authenticate(raw)]

    assert _run(cache, scenario) == [(None, "verified"), (None, "invalid")]
    assert not cache.knows(raw)
    assert store.load_calls == 1


def test_a_background_refresh_that_finds_the_key_deleted_forgets_its_state() -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> None:
        await cache.authenticate(raw)
        store.states[1] = None
        clock.now += 0.6
        await cache.authenticate(raw)
        await _until(lambda: not cache._reads)

    _run(cache, scenario)

    assert 1 not in cache._states


def test_a_failed_background_refresh_leaves_the_entry_and_allows_another() -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    def broken(key_id: int) -> KeyState | None:
        store.load_calls += 1
        raise RuntimeError("database is down")

    async def scenario() -> list[str]:
        await cache.authenticate(raw)
        cache._load_state = broken
        clock.now += 0.6
        first = (await cache.authenticate(raw))[1]
        await _until(lambda: not cache._reads)
        second = (await cache.authenticate(raw))[1]
        await _until(lambda: not cache._reads)
        return [first, second]

    assert _run(cache, scenario) == ["cached", "cached"]
    assert store.load_calls == 2


def test_a_warm_key_is_answered_while_every_verifier_thread_is_busy() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    warm = store.add(1)
    cache = _cache(store, state_ttl=1.0, threads=2, clock=clock)

    async def scenario() -> tuple[KeyState | None, str]:
        await cache.authenticate(warm)
        store.verify_gate.clear()  # argon2 is stuck: both verifier threads busy
        cold = [asyncio.ensure_future(cache.authenticate(crypto.generate_key(PREFIX)[1])) for _ in range(4)]
        await asyncio.sleep(0.02)
        clock.now += 2  # the warm key needs a state read
        answer = await asyncio.wait_for(cache.authenticate(warm), timeout=2)
        store.verify_gate.set()
        await asyncio.gather(*cold)
        return answer

    assert _run(cache, scenario) == (store.states[1], "refreshed")


def test_more_pending_verifications_than_allowed_are_refused_at_once() -> None:
    store = GatedStore()
    cache = _cache(store, max_pending=3)

    async def scenario() -> list[Any]:
        pending = [asyncio.ensure_future(cache.authenticate(crypto.generate_key(PREFIX)[1])) for _ in range(3)]
        await _until(lambda: len(cache._inflight) == 3)
        with pytest.raises(costly.Argon2Busy):
            await cache.authenticate(crypto.generate_key(PREFIX)[1])
        store.verify_gate.set()
        return await asyncio.gather(*pending)

    assert [how for _, how in _run(cache, scenario)] == ["verified"] * 3
    assert cache.stats.refused == 1


def test_a_request_joining_a_pending_verification_is_not_refused_by_the_bound() -> None:
    store = GatedStore()
    raw = store.add(1)
    cache = _cache(store, max_pending=1)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(cache.authenticate(raw))
        await _until(lambda: len(cache._inflight) == 1)
        second = asyncio.ensure_future(cache.authenticate(raw))
        await asyncio.sleep(0.01)
        store.verify_gate.set()
        return await asyncio.gather(first, second)

    assert [state for state, _ in _run(cache, scenario)] == [store.states[1]] * 2


class RecordingGuard:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.events: list[tuple[str, str | None, str]] = []

    def reserve(self, address: str | None, public_id: str) -> None:
        self.events.append(("reserve", address, public_id))
        if self.refuse:
            raise costly.AttemptsExceeded(5.0)

    def release(self, address: str | None, public_id: str) -> None:
        self.events.append(("release", address, public_id))


def test_the_guard_reserves_an_unknown_key_before_verifying_and_releases_a_real_one() -> None:
    store = FakeStore()
    raw = store.add(1)
    public_id = crypto.parse_key(raw, PREFIX).public_id
    guard = RecordingGuard()
    cache = _cache(store)

    async def scenario() -> None:
        await cache.authenticate(raw, "198.51.100.7", guard)
        await cache.authenticate(raw, "198.51.100.7", guard)  # known now: no reservation

    _run(cache, scenario)

    assert guard.events == [("reserve", "198.51.100.7", public_id), ("release", "198.51.100.7", public_id)]


def test_the_guard_keeps_a_failed_attempt_counted() -> None:
    store = FakeStore()
    _, unknown = crypto.generate_key(PREFIX)
    guard = RecordingGuard()
    cache = _cache(store)

    _run(cache, lambda: cache.authenticate(unknown, "198.51.100.7", guard))

    assert [event for event, *_ in guard.events] == ["reserve"]


def test_a_refused_reservation_costs_no_verification() -> None:
    store = FakeStore()
    raw = store.add(1)
    cache = _cache(store)

    with pytest.raises(costly.AttemptsExceeded):
        _run(cache, lambda: cache.authenticate(raw, "198.51.100.7", RecordingGuard(refuse=True)))

    assert store.verify_calls == 0


def test_a_verification_that_raises_gives_the_attempt_back() -> None:
    store = FakeStore()
    raw = store.add(1)
    store.fail_with = costly.Argon2Busy()
    guard = RecordingGuard()
    cache = _cache(store)

    with pytest.raises(costly.Argon2Busy):
        _run(cache, lambda: cache.authenticate(raw, None, guard))

    assert [event for event, *_ in guard.events] == ["reserve", "release"]


def test_malformed_keys_are_never_reserved() -> None:
    guard = RecordingGuard()
    cache = _cache(FakeStore())

    _run(cache, lambda: cache.authenticate("sk-kg-" + "A" * 50, "198.51.100.7", guard))

    assert guard.events == []


def test_clear_forgets_everything_and_outdates_reads_in_flight() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> None:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)
        cache.clear()
        store.load_gate.set()
        await asyncio.sleep(0.05)

    _run(cache, scenario)

    assert not cache.knows(raw) and cache._states == {} and cache._reads == {}


def test_the_oldest_verified_keys_are_evicted_past_max_keys() -> None:
    store = FakeStore()
    raws = [store.add(n) for n in range(1, 4)]
    cache = _cache(store, max_keys=2)

    async def scenario() -> None:
        for raw in raws:
            await cache.authenticate(raw)

    _run(cache, scenario)

    assert [cache.knows(raw) for raw in raws] == [False, True, True]
    assert set(cache._states) == {2, 3}


def test_negative_entries_are_bounded_by_max_keys() -> None:
    store = FakeStore()
    cache = _cache(store, max_keys=2)

    async def scenario() -> None:
        for _ in range(3):
            await cache.authenticate(crypto.generate_key(PREFIX)[1])

    _run(cache, scenario)

    assert len(cache._negative) == 0  # cleared rather than grown past the bound


def test_max_stale_defaults_to_three_ttls() -> None:
    cache = _cache(FakeStore(), state_ttl=2.0)

    assert cache.max_stale == 6.0
    cache.close()
