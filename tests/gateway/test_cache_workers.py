"""gateway.cache.KeyCache: its thread pools, its counters, its time edges and its failed reads.

Beside tests/gateway/test_cache.py (same fakes). What these pin: verifications and state reads
run in their own named, bounded pools with Django's connection hygiene, and ``close()`` neither
waits for argon2 nor lets queued work run; ``stats`` (what the auth bench prints) counts each
event once; the documented defaults and the exact edges of the TTLs; a failed state read is the
waiting request's error and an operator's log line naming the key id, never the key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway import cache as cache_module
from gateway.cache import CacheStats, KeyCache
from keys import costly, crypto
from keys.services import KeyState
from tests.gateway.test_cache import PREFIX, Clock, FakeStore, GatedStore, RecordingGuard, _cache, _run, _until


class PeakStore(FakeStore):
    """A FakeStore that records how many verify()/load_state() calls run at once.

    Each call waits (up to 5 s) until ``expected`` calls have been inside together, so the
    peak reaches the pool's size whatever the machine's load; a pool can never exceed it.
    """

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.active = 0
        self.peak = 0
        self.threads: set[str] = set()
        self._inside = threading.Condition()

    def _enter(self) -> None:
        with self._inside:
            self.active += 1
            self.threads.add(threading.current_thread().name)
            self.peak = max(self.peak, self.active)
            self._inside.notify_all()
            self._inside.wait_for(lambda: self.peak >= self.expected, timeout=5)
        time.sleep(0.02)  # stay a moment: a pool one thread too large would show it (never a false failure)
        with self._inside:
            self.active -= 1

    def verify(self, raw: str) -> KeyState | None:
        self._enter()
        return super().verify(raw)

    def load_state(self, key_id: int) -> KeyState | None:
        self._enter()
        return super().load_state(key_id)


def _default_cache(store: FakeStore, **options: Any) -> KeyCache:
    """A KeyCache with its documented defaults (only the fakes and the clock given)."""
    return KeyCache(pepper=b"pepper", prefix=PREFIX, verify=store.verify, load_state=store.load_state, **options)


# --- the pools ----------------------------------------------------------------------------------


def test_verifications_and_state_reads_run_in_their_own_pools_with_connection_hygiene(monkeypatch) -> None:
    threads: dict[str, list[str]] = {"verify": [], "load": [], "hygiene": []}
    monkeypatch.setattr(
        cache_module, "close_old_connections", lambda: threads["hygiene"].append(threading.current_thread().name)
    )
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    verify, load = store.verify, store.load_state
    store.verify = lambda raw: threads["verify"].append(threading.current_thread().name) or verify(raw)
    store.load_state = lambda key_id: threads["load"].append(threading.current_thread().name) or load(key_id)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> None:
        await cache.authenticate(raw)
        clock.now += 5
        await cache.authenticate(raw)

    _run(cache, scenario)

    (verifier,), (reader,) = threads["verify"], threads["load"]
    assert verifier.startswith("keygate-verify_") and reader.startswith("keygate-state_")
    assert threads["hygiene"] == [verifier, verifier, reader, reader]  # before and after each job


def test_at_most_four_verifications_run_at_once_by_default() -> None:
    store = PeakStore(expected=4)
    raws = [store.add(n) for n in range(1, 9)]
    cache = _default_cache(store)

    _run(cache, lambda: asyncio.gather(*(cache.authenticate(raw) for raw in raws)))

    assert store.peak == 4 and len(store.threads) == 4 and store.verify_calls == 8


def test_at_most_two_state_reads_run_at_once_by_default() -> None:
    store, clock = PeakStore(expected=1), Clock()
    raws = [store.add(n) for n in range(1, 5)]
    cache = _default_cache(store, clock=clock)
    verifiers: set[str] = set()

    async def scenario() -> None:
        for raw in raws:
            await cache.authenticate(raw)
        verifiers.update(store.threads)
        store.expected, store.peak = 2, 0
        clock.now += 60  # every state is past its TTL: each request waits for a read
        await asyncio.gather(*(cache.authenticate(raw) for raw in raws))

    _run(cache, scenario)

    assert store.peak == 2 and len(store.threads - verifiers) == 2 and store.load_calls == 4


def _finished_threads(prefix: str) -> None:
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            thread.join(10)


def test_close_does_not_wait_for_a_running_verification_and_cancels_the_queued_ones() -> None:
    store = GatedStore()
    first, second = store.add(1), store.add(2)
    cache = _cache(store, threads=1)

    async def scenario() -> tuple[Any, Any]:
        running = asyncio.ensure_future(cache.authenticate(first))
        queued = asyncio.ensure_future(cache.authenticate(second))
        await _until(lambda: len(cache._inflight) == 2)
        cache.close()
        verified_at_close = store.verify_calls
        store.verify_gate.set()
        outcomes = await asyncio.gather(running, queued, return_exceptions=True)
        return verified_at_close, outcomes

    verified_at_close, (running, queued) = _run(cache, scenario)
    _finished_threads("keygate-verify")

    assert verified_at_close == 0  # close() returned while argon2 was still running
    assert running == (store.keys[first], "verified")
    assert isinstance(queued, asyncio.CancelledError)
    assert store.verify_calls == 1  # the queued verification never ran


def test_close_does_not_wait_for_a_running_state_read_and_cancels_the_queued_ones() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    first, second = store.add(1), store.add(2)
    cache = _cache(store, state_threads=1, state_ttl=1.0, clock=clock)

    async def scenario() -> tuple[int, list[Any]]:
        await cache.authenticate(first), await cache.authenticate(second)
        store.load_gate.clear()
        clock.now += 5
        reads = [asyncio.ensure_future(cache.authenticate(raw)) for raw in (first, second)]
        await _until(lambda: store.loads_started == 1 and len(cache._reads) == 2)
        cache.close()
        loaded_at_close = store.load_calls
        store.load_gate.set()
        return loaded_at_close, await asyncio.gather(*reads, return_exceptions=True)

    loaded_at_close, (running, queued) = _run(cache, scenario)
    _finished_threads("keygate-state")

    assert loaded_at_close == 0
    assert running == (store.states[1], "refreshed")
    assert isinstance(queued, asyncio.CancelledError)
    assert store.load_calls == 1


# --- the counters the auth bench prints -----------------------------------------------------------


def test_stats_count_each_hit_miss_verification_and_read_once() -> None:
    store, clock = FakeStore(), Clock()
    raws = [store.add(1), store.add(2)]
    wrong = crypto.generate_key(PREFIX)[1]
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> None:
        for raw in raws:  # 2 misses, 2 verifications
            await cache.authenticate(raw)
        for raw in raws * 2:  # 4 hits
            await cache.authenticate(raw)
        await cache.authenticate(wrong)  # a miss, a verification
        await cache.authenticate(wrong)  # a negative hit
        clock.now += 0.6
        await cache.authenticate(raws[0])  # a hit that starts a background read
        await _until(lambda: not cache._reads)
        clock.now += 5
        await cache.authenticate(raws[1])  # waits for a read: not a hit

    _run(cache, scenario)

    assert cache.stats == CacheStats(
        hits=5, stale_hits=0, misses=3, verifications=3, negative_hits=1, state_reads=2, refused=0
    )


def test_stats_count_each_refusal_of_a_full_verification_line() -> None:
    cache = _cache(FakeStore(), max_pending=0)

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(costly.Argon2Busy):
                await cache.authenticate(crypto.generate_key(PREFIX)[1])

    _run(cache, scenario)

    assert cache.stats.refused == 3 and cache.stats.verifications == 0


# --- defaults and exact edges ---------------------------------------------------------------------


def test_by_default_a_state_is_refreshed_in_the_background_from_half_a_second_old() -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(1)
    cache = _default_cache(store, clock=clock)

    async def scenario() -> str:
        await cache.authenticate(raw)
        clock.now += 0.5  # exactly half the default one-second TTL
        how = (await cache.authenticate(raw))[1]
        await _until(lambda: not cache._reads)
        return how

    assert _run(cache, scenario) == "cached"
    assert store.load_calls == 1


def test_by_default_a_failed_key_is_verified_again_five_seconds_later() -> None:
    store, clock = FakeStore(), Clock()
    wrong = crypto.generate_key(PREFIX)[1]
    cache = _default_cache(store, clock=clock)

    async def scenario() -> None:
        await cache.authenticate(wrong)
        clock.now += 4.999
        await cache.authenticate(wrong)  # from memory
        clock.now = 1005.0  # exactly the default negative TTL
        await cache.authenticate(wrong)

    _run(cache, scenario)

    assert store.verify_calls == 2


def test_by_default_64_verifications_may_be_pending_and_the_65th_is_told_to_retry_in_a_second() -> None:
    store = GatedStore()
    cache = _default_cache(store)

    async def scenario() -> list[Any]:
        pending = [asyncio.ensure_future(cache.authenticate(crypto.generate_key(PREFIX)[1])) for _ in range(64)]
        await _until(lambda: len(cache._inflight) == 64)
        with pytest.raises(costly.Argon2Busy) as refused:
            await cache.authenticate(crypto.generate_key(PREFIX)[1])
        store.verify_gate.set()
        return [refused.value, *await asyncio.gather(*pending)]

    refusal, *verified = _run(cache, scenario)

    assert refusal.retry_after == 1.0 and len(verified) == 64


def test_stale_state_is_served_up_to_the_max_stale_given() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, max_stale=10.0, clock=clock)

    async def scenario() -> str:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)  # starts the refresh, which hangs
        clock.now += 8.0  # 8.6 s old: past three TTLs, within the ten seconds given
        how = (await cache.authenticate(raw))[1]
        store.load_gate.set()
        await _until(lambda: not cache._reads)
        return how

    assert _run(cache, scenario) == "cached"


def test_state_exactly_max_stale_old_waits_for_the_read_under_way() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, max_stale=3.0, clock=clock)

    async def scenario() -> str:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)  # the refresh under way
        clock.now = 1003.0  # exactly max_stale after the last read
        waiting = asyncio.ensure_future(cache.authenticate(raw))
        await _until(lambda: store.loads_started == 1)
        store.load_gate.set()
        return (await waiting)[1]

    assert _run(cache, scenario) == "refreshed"


def test_a_dropped_key_can_still_be_evicted() -> None:
    store = FakeStore()
    first, second = store.add(1), store.add(2)
    cache = _cache(store, max_keys=1)

    async def scenario() -> None:
        await cache.authenticate(first)
        cache.drop(1)  # its state is gone, its verification remembered
        await cache.authenticate(second)  # evicts the first

    _run(cache, scenario)

    assert not cache.knows(first) and cache.knows(second)


def test_concurrent_requests_for_a_key_deleted_meanwhile_all_get_none() -> None:
    store, clock = FakeStore(delay=0.05), Clock()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> list[Any]:
        await cache.authenticate(raw)
        del store.keys[raw]
        store.states[1] = None
        clock.now += 5
        return await asyncio.gather(*(cache.authenticate(raw) for _ in range(5)))

    assert [state for state, _ in _run(cache, scenario)] == [None] * 5
    assert not cache.knows(raw)


def test_a_verification_that_raises_gives_back_exactly_the_attempt_it_took() -> None:
    store = FakeStore()
    raw = store.add(1)
    public_id = crypto.parse_key(raw, PREFIX).public_id
    store.fail_with = costly.Argon2Busy()
    guard = RecordingGuard()
    cache = _cache(store)

    with pytest.raises(costly.Argon2Busy):
        _run(cache, lambda: cache.authenticate(raw, "198.51.100.7", guard))

    assert guard.events == [("reserve", "198.51.100.7", public_id), ("release", "198.51.100.7", public_id)]


# --- failed and background reads ------------------------------------------------------------------


def _broken(calls: list[int]) -> Callable[[int], KeyState | None]:
    def load_state(key_id: int) -> KeyState | None:
        calls.append(key_id)
        raise RuntimeError("database is down")

    return load_state


def test_a_failed_state_read_is_the_waiting_requests_error_and_a_log_line_naming_the_key_id(caplog) -> None:
    store, clock = FakeStore(), Clock()
    raw = store.add(7)
    calls: list[int] = []
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> None:
        await cache.authenticate(raw)
        cache._load_state = _broken(calls)
        clock.now += 5  # past the TTL: the request waits for the read
        with pytest.raises(RuntimeError, match="database is down"):
            await cache.authenticate(raw)

    with caplog.at_level(logging.WARNING, logger="keygate.gateway"):
        _run(cache, scenario)

    assert calls == [7] and cache.knows(raw)  # the key is not taken for deleted
    assert [record.getMessage() for record in caplog.records] == ["reading the state of key 7 failed: database is down"]
    assert raw not in caplog.text


def test_a_background_refresh_is_held_until_it_ends_and_then_let_go() -> None:
    store, clock = GatedStore(), Clock()
    store.verify_gate.set()
    raw = store.add(1)
    cache = _cache(store, state_ttl=1.0, clock=clock)

    async def scenario() -> tuple[int, int]:
        await cache.authenticate(raw)
        store.load_gate.clear()
        clock.now += 0.6
        await cache.authenticate(raw)
        held = len(cache._tasks)
        store.load_gate.set()
        await _until(lambda: not cache._reads)
        await asyncio.sleep(0)  # the task's done callbacks run on the next turn of the loop
        return held, len(cache._tasks)

    assert _run(cache, scenario) == (1, 0)
