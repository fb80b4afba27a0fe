"""keys.costly: the process's argon2 limiter, attempt counters in Django's cache, the attempt guard.

The limiter is driven by real threads that hold their slot until the test lets them go, so the
counts are exact (no timing assumptions beyond a generous deadline).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.cache import cache

from keys import costly
from keys.costly import Argon2Busy, Argon2Limiter, AttemptGuard, AttemptsExceeded, CacheWindowCounter

MIB = 1024


def _limiter(**options: Any) -> Argon2Limiter:
    return Argon2Limiter(**{"max_concurrent": 2, "memory_kib": 64 * MIB, "max_queued": 2, "max_wait": 5.0, **options})


class Holder:
    """A thread that takes a slot and keeps it until ``release()``; records what happened."""

    def __init__(self, limiter: Argon2Limiter, cost: int = MIB) -> None:
        self.limiter, self.cost = limiter, cost
        self.entered = threading.Event()
        self.go = threading.Event()
        self.outcome: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.limiter.slot(self.cost):
                self.entered.set()
                self.go.wait(10)
            self.outcome = "ran"
        except Argon2Busy:
            self.outcome = "refused"
            self.entered.set()

    def release(self) -> None:
        self.go.set()
        self.thread.join(10)


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def test_the_limiter_runs_at_most_max_concurrent_jobs_and_queues_the_next() -> None:
    limiter = _limiter(max_concurrent=2)
    first, second = Holder(limiter), Holder(limiter)
    _until(lambda: limiter.running == 2)
    third = Holder(limiter)
    _until(lambda: limiter.queued == 1)

    assert not third.entered.is_set()
    first.release()
    _until(third.entered.is_set)
    assert limiter.running == 2
    second.release(), third.release()
    assert (first.outcome, second.outcome, third.outcome) == ("ran", "ran", "ran")
    assert (limiter.running, limiter.memory_used_kib, limiter.stats.peak_running) == (0, 0, 2)


def test_the_limiter_refuses_at_once_when_its_queue_is_full() -> None:
    limiter = _limiter(max_concurrent=1, max_queued=2)
    running = Holder(limiter)
    _until(lambda: limiter.running == 1)
    queued = [Holder(limiter), Holder(limiter)]
    _until(lambda: limiter.queued == 2)

    started = time.monotonic()
    with pytest.raises(Argon2Busy) as refused:
        limiter.acquire(MIB)

    assert time.monotonic() - started < 1.0  # a fast refusal, not a wait
    assert refused.value.retry_after >= 1
    assert limiter.stats.refused == 1
    running.release()
    for holder in queued:
        holder.go.set()
        holder.thread.join(10)
    assert [holder.outcome for holder in queued] == ["ran", "ran"]


def test_a_queue_of_zero_refuses_everything_beyond_the_running_slots() -> None:
    limiter = _limiter(max_concurrent=1, max_queued=0)
    running = Holder(limiter)
    _until(lambda: limiter.running == 1)

    with pytest.raises(Argon2Busy):
        limiter.acquire(MIB)
    running.release()
    with limiter.slot(MIB):
        assert limiter.running == 1


def test_a_queued_caller_gives_up_after_max_wait_and_leaves_the_line() -> None:
    limiter = _limiter(max_concurrent=1, max_queued=4, max_wait=0.05)
    running = Holder(limiter)
    _until(lambda: limiter.running == 1)

    with pytest.raises(Argon2Busy):
        limiter.acquire(MIB)

    assert limiter.queued == 0 and limiter.stats.refused == 1 and limiter.stats.waited == 1
    running.release()
    assert limiter.running == 0


def test_memory_bounds_concurrency_below_the_slot_count() -> None:
    limiter = _limiter(max_concurrent=4, memory_kib=250 * MIB)
    big = [Holder(limiter, 100 * MIB), Holder(limiter, 100 * MIB)]
    _until(lambda: limiter.running == 2)
    third = Holder(limiter, 100 * MIB)  # 300 MiB would not fit in 250
    _until(lambda: limiter.queued == 1)
    small_blocked = Holder(limiter, 19 * MIB)  # first come, first served: waits behind the big one
    _until(lambda: limiter.queued == 2)

    assert limiter.memory_used_kib == 200 * MIB and not third.entered.is_set()
    big[0].release()
    _until(lambda: third.entered.is_set() and small_blocked.entered.is_set())
    assert limiter.memory_used_kib == 219 * MIB and limiter.stats.peak_memory_kib == 219 * MIB
    for holder in (big[1], third, small_blocked):
        holder.release()
    assert limiter.memory_used_kib == 0


def test_a_job_larger_than_the_whole_budget_still_runs_alone() -> None:
    limiter = _limiter(max_concurrent=2, memory_kib=10 * MIB, max_queued=0)

    with limiter.slot(100 * MIB):
        assert limiter.running == 1
        with pytest.raises(Argon2Busy):  # nothing else fits beside it, and there is no line
            limiter.acquire(1)
    with limiter.slot(10 * MIB):  # exactly the budget fits
        assert limiter.memory_used_kib == 10 * MIB


def test_a_slot_is_given_back_when_the_work_raises() -> None:
    limiter = _limiter()

    with pytest.raises(RuntimeError), limiter.slot(MIB):
        raise RuntimeError("argon2 failed")

    assert (limiter.running, limiter.memory_used_kib) == (0, 0)


def test_a_limiter_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        Argon2Limiter(max_concurrent=0, memory_kib=1, max_queued=0, max_wait=0)


def test_the_process_limiter_is_one_object_sized_by_the_settings(settings) -> None:
    settings.KEYGATE_ARGON2_LIMITS = {"max_concurrent": 3, "memory_kib": 7 * MIB, "max_queued": 5, "max_wait": 0.5}

    limiter = costly.argon2_limiter()

    assert limiter is costly.argon2_limiter()
    assert (limiter.max_concurrent, limiter.memory_kib, limiter.max_queued, limiter.max_wait) == (3, 7 * MIB, 5, 0.5)


def test_the_default_concurrency_is_at_most_four_and_at_most_the_cores(monkeypatch) -> None:
    monkeypatch.setattr(costly.os, "cpu_count", lambda: 16)
    assert costly.default_concurrency() == 4
    monkeypatch.setattr(costly.os, "cpu_count", lambda: 2)
    assert costly.default_concurrency() == 2
    monkeypatch.setattr(costly.os, "cpu_count", lambda: None)
    assert costly.default_concurrency() == 1


# --- counters in Django's cache --------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_040.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _counter(limit: int = 3, clock: Clock | None = None) -> CacheWindowCounter:
    return CacheWindowCounter(limit=limit, window=60, namespace="test", cache=cache, clock=clock or Clock())


def test_a_cache_counter_admits_limit_attempts_then_says_how_long_to_wait() -> None:
    clock = Clock(1_000_040.0)  # 40 s before its one-minute window ends
    counter = _counter(limit=3, clock=clock)

    waits = [counter.take("198.51.100.7") for _ in range(5)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == waits[4] == pytest.approx(40.0)
    assert counter.take("203.0.113.9") == 0.0  # another name has its own count


def test_a_cache_counter_starts_again_in_the_next_window() -> None:
    clock = Clock()
    counter = _counter(limit=1, clock=clock)
    counter.take("a")
    assert counter.take("a") > 0

    clock.now += 60

    assert counter.take("a") == 0.0


def test_giving_back_an_attempt_frees_it() -> None:
    counter = _counter(limit=2)
    counter.take("a"), counter.take("a")

    counter.give_back("a")

    assert counter.take("a") == 0.0
    assert counter.take("a") > 0


def test_reset_forgets_every_attempt_of_the_window() -> None:
    counter = _counter(limit=2)
    counter.take("a"), counter.take("a")

    counter.reset("a")

    assert [counter.take("a"), counter.take("a")] == [0.0, 0.0]


def test_giving_back_after_the_counter_expired_is_harmless() -> None:
    counter = _counter()

    counter.give_back("never-taken")

    assert counter.take("never-taken") == 0.0


def test_a_cache_counter_with_limit_zero_admits_everything_and_stores_nothing() -> None:
    counter = _counter(limit=0)

    assert [counter.take("a") for _ in range(100)] == [0.0] * 100
    counter.give_back("a")
    assert cache.get(counter._slot("a")[0]) is None


def test_a_wait_is_never_less_than_a_second() -> None:
    clock = Clock(1_000_079.9999)  # a hair before the window ends
    counter = _counter(limit=1, clock=clock)
    counter.take("a")

    assert counter.take("a") == 1.0


def test_the_cache_counter_counts_atomically_under_parallel_attempts() -> None:
    # A fixed clock: 20 threads on the real one could straddle a window's end and all be admitted.
    counter = CacheWindowCounter(limit=5, window=60, namespace="parallel", cache=cache, clock=Clock())
    admitted: list[float] = []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        barrier.wait()
        admitted.append(counter.take("alice\0198.51.100.7"))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert admitted.count(0.0) == 5


def test_names_are_hashed_in_the_cache_key() -> None:
    key, _ = _counter()._slot("alice\0198.51.100.7 with spaces")

    assert "alice" not in key and " " not in key and key.startswith("keygate:test:")


# --- the attempt guard -------------------------------------------------------------------------


class CountingCounter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def take(self, name: str) -> float:
        if self.counts.get(name, 0) >= self.limit:
            return 7.0
        self.counts[name] = self.counts.get(name, 0) + 1
        return 0.0

    def give_back(self, name: str) -> None:
        self.counts[name] -= 1


def test_the_guard_counts_the_address_and_the_public_id() -> None:
    per_address, per_key = CountingCounter(5), CountingCounter(5)
    guard = AttemptGuard(per_address, per_key)

    guard.reserve("198.51.100.7", "AbCdEfGh1234")

    assert per_address.counts == {"198.51.100.7": 1} and per_key.counts == {"AbCdEfGh1234": 1}
    guard.release("198.51.100.7", "AbCdEfGh1234")
    assert per_address.counts == {"198.51.100.7": 0} and per_key.counts == {"AbCdEfGh1234": 0}


def test_the_guard_refuses_an_address_over_its_limit_before_counting_the_public_id() -> None:
    per_address, per_key = CountingCounter(1), CountingCounter(5)
    guard = AttemptGuard(per_address, per_key)
    guard.reserve("198.51.100.7", "first0000000")

    with pytest.raises(AttemptsExceeded) as refused:
        guard.reserve("198.51.100.7", "second000000")

    assert refused.value.wait == 7.0
    assert "second000000" not in per_key.counts


def test_the_guard_refuses_a_public_id_over_its_limit_from_any_address() -> None:
    guard = AttemptGuard(CountingCounter(100), CountingCounter(2))
    guard.reserve("198.51.100.1", "AbCdEfGh1234")
    guard.reserve("198.51.100.2", "AbCdEfGh1234")

    with pytest.raises(AttemptsExceeded):
        guard.reserve("198.51.100.3", "AbCdEfGh1234")
    guard.reserve("198.51.100.3", "OtherKey0000")


def test_the_guard_without_an_address_counts_only_the_public_id() -> None:
    per_address, per_key = CountingCounter(0), CountingCounter(5)
    guard = AttemptGuard(per_address, per_key)

    guard.reserve(None, "AbCdEfGh1234")
    guard.release(None, "AbCdEfGh1234")

    assert per_address.counts == {} and per_key.counts == {"AbCdEfGh1234": 0}


# --- exact figures: what a refused caller is told, what the bench reads, what the cache holds ----


def test_two_jobs_that_fill_the_memory_budget_exactly_run_side_by_side() -> None:
    limiter = _limiter(max_concurrent=2, memory_kib=200 * MIB, max_queued=0)

    with limiter.slot(100 * MIB), limiter.slot(100 * MIB):
        assert (limiter.running, limiter.memory_used_kib) == (2, 200 * MIB)


def test_a_refusal_from_a_full_line_says_retry_after_the_limiters_figure() -> None:
    default = _limiter(max_concurrent=1, max_queued=0)
    told = _limiter(max_concurrent=1, max_queued=0, retry_after=4.0)

    with default.slot(MIB), told.slot(MIB):
        with pytest.raises(Argon2Busy) as by_default:
            default.acquire(MIB)
        with pytest.raises(Argon2Busy) as by_setting:
            told.acquire(MIB)

    assert by_default.value.retry_after == 1.0 and by_setting.value.retry_after == 4.0
    assert Argon2Busy().retry_after == 1.0  # what the gateway's full verification line says


def test_a_refusal_after_waiting_in_line_says_retry_after_the_limiters_figure() -> None:
    limiter = _limiter(max_concurrent=1, max_queued=1, max_wait=0.01, retry_after=3.0)

    with limiter.slot(MIB), pytest.raises(Argon2Busy) as refused:
        limiter.acquire(MIB)

    assert refused.value.retry_after == 3.0


def test_the_limiter_counts_runs_waits_and_refusals_for_the_bench() -> None:
    limiter = _limiter(max_concurrent=1, max_queued=1, max_wait=0.01)
    for _ in range(3):
        with limiter.slot(MIB):
            pass
    with limiter.slot(MIB):
        with pytest.raises(Argon2Busy):  # waited in line, gave up
            limiter.acquire(MIB)
        with pytest.raises(Argon2Busy):  # waited in line, gave up
            limiter.acquire(MIB)
    holder = Holder(limiter)
    _until(lambda: limiter.running == 1)
    queued = Holder(limiter)
    _until(lambda: limiter.queued == 1)
    with pytest.raises(Argon2Busy):  # the line is full: refused at once
        limiter.acquire(MIB)
    holder.release()
    queued.release()

    assert (limiter.stats.runs, limiter.stats.waited, limiter.stats.refused) == (6, 3, 3)


def test_a_limiter_without_a_slot_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^max_concurrent must be at least 1$"):
        Argon2Limiter(max_concurrent=0, memory_kib=1, max_queued=0, max_wait=0)


class RecordingCache:
    """A cache with Django's add/incr/decr contract that records every add; ``incr`` can fail once."""

    def __init__(self, *, expire_before_incr: bool = False) -> None:
        self.values: dict[str, int] = {}
        self.adds: list[tuple[Any, Any, Any]] = []
        self.expire_before_incr = expire_before_incr

    def add(self, key: Any, value: Any = None, timeout: Any = "default") -> bool:
        self.adds.append((key, value, timeout))
        if key in self.values:
            return False
        self.values[key] = value
        return True

    def incr(self, key: str) -> int:
        if self.expire_before_incr:
            self.expire_before_incr = False
            del self.values[key]
            raise ValueError(f"Key '{key}' not found")
        self.values[key] += 1
        return self.values[key]

    def decr(self, key: str) -> int:
        self.values[key] -= 1
        return self.values[key]


def test_a_window_counter_lives_two_windows_and_a_second_in_the_cache() -> None:
    store = RecordingCache()
    counter = CacheWindowCounter(limit=3, window=60, namespace="test", cache=store, clock=Clock())

    counter.take("a"), counter.take("a")

    key = counter._slot("a")[0]
    assert store.adds == [(key, 1, 121), (key, 1, 121)]


def test_a_counter_that_expired_between_add_and_incr_starts_again_at_one() -> None:
    store = RecordingCache()
    counter = CacheWindowCounter(limit=1, window=60, namespace="test", cache=store, clock=Clock())
    counter.take("a")
    key = counter._slot("a")[0]
    store.expire_before_incr = True

    assert counter.take("a") == 0.0  # the window's count restarted: this is its first attempt

    assert store.adds[-1] == (key, 1, 121) and store.values == {key: 1}
    assert counter.take("a") > 0


def test_a_counter_counts_in_the_cache_it_is_given_not_the_default_one() -> None:
    store = RecordingCache()
    counter = CacheWindowCounter(limit=3, window=60, namespace="given", cache=store, clock=Clock())

    counter.take("a")

    assert list(store.values) == [counter._slot("a")[0]]
    assert cache.get(counter._slot("a")[0]) is None


def test_the_cache_key_is_the_namespace_the_names_sha256_and_the_window_number() -> None:
    # Every process (and both sides of a rolling deploy) must count a name under one key.
    import hashlib

    key, ends = _counter(clock=Clock(1_000_040.0))._slot("198.51.100.7")

    assert key == f"keygate:test:{hashlib.sha256(b'198.51.100.7').hexdigest()[:32]}:16667"
    assert ends == 16668 * 60


def test_any_name_can_be_counted_even_one_with_a_lone_surrogate() -> None:
    counter = _counter(limit=1)
    name = "alice\udcff"  # a username as the form posted it, not valid UTF-8

    assert counter.take(name) == 0.0
    assert counter.take(name) > 0
    assert counter._slot(name)[0] != counter._slot("alice")[0]


def test_the_guard_passes_on_how_long_an_address_must_wait() -> None:
    class Refusing(CountingCounter):
        def take(self, name: str) -> float:
            return 12.5

    guard = AttemptGuard(Refusing(0), CountingCounter(5))

    with pytest.raises(AttemptsExceeded) as refused:
        guard.reserve("198.51.100.7", "AbCdEfGh1234")

    assert refused.value.wait == 12.5


def test_the_guard_passes_on_how_long_a_public_id_must_wait() -> None:
    class Refusing(CountingCounter):
        def take(self, name: str) -> float:
            return 42.0

    guard = AttemptGuard(CountingCounter(5), Refusing(0))

    with pytest.raises(AttemptsExceeded) as refused:
        guard.reserve("198.51.100.7", "AbCdEfGh1234")

    assert refused.value.wait == 42.0
