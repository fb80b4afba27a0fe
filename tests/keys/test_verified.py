"""keys.verified.VerifiedKeys: the management API's verified-key cache, under parallel threads.

A fake key store counts its verify calls (the stand-in for argon2); no database.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache

from keys import costly, crypto
from keys.costly import AttemptGuard, CacheWindowCounter
from keys.verified import VerifiedKeys
from tests.gateway.test_cache import PREFIX, FakeStore


def _keys(store: FakeStore, **options) -> VerifiedKeys:
    return VerifiedKeys(pepper=b"pepper", prefix=PREFIX, verify=store.verify, load_state=store.load_state, **options)


def _forged(real: str, n: int) -> str:
    head = real[:18] + f"{n:032d}"
    return head + crypto.checksum(head)


def _guard(per_address: int = 30, per_key: int = 10) -> AttemptGuard:
    return AttemptGuard(
        CacheWindowCounter(limit=per_address, window=60, namespace="t-address", cache=cache),
        CacheWindowCounter(limit=per_key, window=60, namespace="t-key", cache=cache),
    )


def _parallel(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def one(n: int):
        barrier.wait()
        try:
            return work(n)
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_a_key_verifies_once_then_reads_only_its_state() -> None:
    store = FakeStore()
    raw = store.add(1)
    keys = _keys(store)

    results = [keys.authenticate(raw) for _ in range(3)]

    assert [how for _, how in results] == ["verified", "cached", "cached"]
    assert (store.verify_calls, store.load_calls) == (1, 2)


def test_parallel_first_uses_of_one_key_share_one_verification() -> None:
    store = FakeStore(delay=0.05)
    raw = store.add(1)
    keys = _keys(store)

    results = _parallel(50, lambda n: keys.authenticate(raw))

    assert store.verify_calls == 1
    assert {state for state, _ in results} == {store.keys[raw]}


def test_a_verification_error_reaches_every_waiter_and_is_not_remembered() -> None:
    store = FakeStore(delay=0.05)
    raw = store.add(1)
    store.fail_with = costly.Argon2Busy()
    keys = _keys(store)

    results = _parallel(10, lambda n: keys.authenticate(raw))
    store.fail_with = None

    assert all(isinstance(result, costly.Argon2Busy) for result in results)
    assert keys.authenticate(raw) == (store.keys[raw], "verified")


def test_150_parallel_forged_keys_for_one_public_id_cost_at_most_the_per_key_limit() -> None:
    store = FakeStore(delay=0.01)
    real = store.add(1)
    keys = _keys(store)
    guard = _guard(per_address=30, per_key=10)

    results = _parallel(150, lambda n: keys.authenticate(_forged(real, n), "198.51.100.9", guard))

    refused = sum(isinstance(result, costly.AttemptsExceeded) for result in results)
    print(f"\n150 parallel forged management keys: {store.verify_calls} verifications, {refused} refused")
    assert store.verify_calls == 10 and refused == 140


def test_150_parallel_guesses_from_one_address_stop_at_its_limit() -> None:
    store = FakeStore(delay=0.01)
    keys = _keys(store)
    guard = _guard(per_address=30, per_key=1000)

    results = _parallel(150, lambda n: keys.authenticate(crypto.generate_key(PREFIX)[1], "198.51.100.9", guard))

    assert store.verify_calls == 30
    assert sum(isinstance(result, costly.AttemptsExceeded) for result in results) == 120


def test_a_real_key_gives_its_attempts_back_and_a_known_key_is_never_counted() -> None:
    store = FakeStore()
    raws = [store.add(n) for n in range(1, 5)]
    keys = _keys(store)
    guard = _guard(per_address=1, per_key=1)

    for _ in range(3):
        for raw in raws:
            state, _ = keys.authenticate(raw, "198.51.100.9", guard)
            assert state is not None


def test_malformed_keys_cost_nothing_and_are_never_counted() -> None:
    store = FakeStore()
    raw = store.add(1)
    keys = _keys(store)
    guard = _guard(per_address=1)

    assert [keys.authenticate("sk-kg-" + "A" * 50, "a", guard)[1] for _ in range(5)] == ["malformed"] * 5
    assert keys.authenticate(raw, "a", guard)[0] is not None
    assert store.verify_calls == 1


def test_a_failed_key_is_refused_from_memory_within_the_negative_ttl_then_verified_again() -> None:
    store = FakeStore()
    _, unknown = crypto.generate_key(PREFIX)
    clock = [100.0]
    keys = _keys(store, negative_ttl=5.0, clock=lambda: clock[0])

    hows = [keys.authenticate(unknown)[1] for _ in range(3)]
    clock[0] += 5.0
    again = keys.authenticate(unknown)[1]

    assert hows == ["verified", "invalid", "invalid"] and again == "verified"
    assert store.verify_calls == 2


def test_a_deleted_key_is_forgotten() -> None:
    store = FakeStore()
    raw = store.add(1)
    keys = _keys(store)
    keys.authenticate(raw)
    del store.keys[raw]
    store.states[1] = None

    assert keys.authenticate(raw) == (None, "verified")
    assert not keys.knows(raw)


def test_verified_keys_and_failures_are_bounded() -> None:
    store = FakeStore()
    raws = [store.add(n) for n in range(1, 4)]
    keys = _keys(store, max_keys=2)

    for raw in raws:
        keys.authenticate(raw)
    for _ in range(3):
        keys.authenticate(crypto.generate_key(PREFIX)[1])

    assert [keys.knows(raw) for raw in raws] == [False, True, True]
    assert len(keys._negative) <= 2


def test_no_plaintext_key_is_held() -> None:
    store = FakeStore()
    raw = store.add(1)
    keys = _keys(store)
    keys.authenticate(raw)

    assert raw not in repr(keys.__dict__) and all(isinstance(d, bytes) for d in keys._ids)


def test_parallel_first_uses_of_a_real_key_all_succeed_whatever_the_limits() -> None:
    store = FakeStore(delay=0.05)
    raw = store.add(1)
    keys = _keys(store)
    guard = _guard(per_address=2, per_key=2)

    results = _parallel(50, lambda n: keys.authenticate(raw, "198.51.100.9", guard))

    assert all(not isinstance(result, Exception) and result[0] is not None for result in results)
    assert store.verify_calls == 1
