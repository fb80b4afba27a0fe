"""Auth figures for DESIGN §6 (run by bench/run.py in a subprocess; prints one JSON line).

    python bench/auth_bench.py --json [--quick]      # from the project root, project venv

Measures, against a throw-away SQLite database (DATABASE_URL from bench/run.py):
- cold_verify_ms           keys.services.verify_key(raw): one indexed lookup + one argon2id verify
- argon2_verify_ms         the argon2id verify alone, at the configured parameters
- garbage_key_us           rejecting a key with a bad checksum, and the DB queries it made (must be 0)
- cached_verify_us         a verify that hits the gateway's verified-key cache
- argon2_computations_concurrent_first
                           N concurrent first requests of one new key through the gateway
                           cache → how many argon2 verifies ran (single-flight: exactly 1)
- forged_300_one_public_id_one_address_argon2_runs
                           300 concurrent forged keys (valid checksum, known public id) from one
                           address through KeyAuthentication → argon2 runs (target ≤ 35)
- burst_*, warm_key_during_burst_*
                           150 addresses × 10 forged keys for 150 known public ids at once →
                           argon2 runs, statuses, the limiter's peak; a warm key's latency
                           meanwhile, its state re-read every 50 ms (target p99 ≤ 50 ms)

The gateway-cache figures need an async verifier from gateway.cache; `_gateway_verifier()`
below is the one place that knows its name — adjust it when the cache lands. Everything
that cannot be measured is reported as null with the reason in "notes".
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Counter:
    """Counts calls of a method across all threads by patching it on its class."""

    def __init__(self, owner: type, name: str) -> None:
        self.owner, self.name, self.count = owner, name, 0
        self.original = getattr(owner, name)

    def __enter__(self) -> Counter:
        original = self.original

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        setattr(self.owner, self.name, counted)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self.original)


def _gateway_verifier():
    """(async verify(raw) -> KeyState | None, the cache) through the gateway's verified-key cache.

    Built the way gateway.asgi.GatewayApp builds it; the one place that knows the cache's API.
    """
    from django.conf import settings

    from gateway.cache import KeyCache  # ImportError: not written yet

    cache = KeyCache(
        pepper=settings.KEYGATE_PEPPER.encode(),
        prefix=settings.KEYGATE_KEY_PREFIX,
        state_ttl=getattr(settings, "KEYGATE_STATE_TTL", 1.0),
        negative_ttl=getattr(settings, "KEYGATE_NEGATIVE_TTL", 5.0),
    )

    async def verify(raw: str):
        state, _why = await cache.authenticate(raw)
        return state

    return verify, cache


async def _call(fn, raw):
    result = fn(raw)
    return await result if inspect.isawaitable(result) else result


def _per_call_us(fn, raw, n: int) -> float:
    """Median over 5 batches of the mean time per call, µs."""
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(raw)
        batches.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(batches)


async def _per_call_us_async(fn, raw, n: int) -> float:
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            await _call(fn, raw)
        batches.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(batches)


def run(quick: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from argon2 import PasswordHasher
    from django.conf import settings
    from django.core.management import call_command
    from django.db.backends.utils import CursorWrapper

    from keys import crypto, services

    call_command("migrate", verbosity=0, interactive=False)
    out: dict = {"available": True, "notes": []}
    n_cold = 3 if quick else 10
    n_fast = 2000 if quick else 20000

    key, raw = services.key_create(name="bench-auth", model_patterns="*", via="bench")
    key_hash = key.key_hash
    hasher = services.get_hasher()
    services.verify_key(raw)  # warm imports and the DB connection
    cold = []
    for _ in range(n_cold):
        t0 = time.perf_counter()
        assert services.verify_key(raw) is not None
        cold.append((time.perf_counter() - t0) * 1000)
    out["cold_verify_ms"] = statistics.median(cold)
    t0 = time.perf_counter()
    for _ in range(n_cold):
        crypto.verify_key_hash(hasher, key_hash, raw)
    out["argon2_verify_ms"] = (time.perf_counter() - t0) / n_cold * 1000
    out["argon2_params"] = dict(settings.KEYGATE_ARGON2)

    # A well-formed key with a wrong checksum: rejected before any I/O.
    garbage = raw[:-6] + ("A" * 6 if not raw.endswith("A" * 6) else "B" * 6)

    try:
        verifier, cache = _gateway_verifier()
        via = "gateway.cache.KeyCache.authenticate"
    except Exception as error:  # ImportError, or a cache we do not know how to call
        verifier = None
        via = "keys.services.verify_key"
        out["notes"].append(
            f"gateway cache not available ({error}); garbage key timed through {via}; "
            "cached verify and single-flight not measured"
        )
    out["garbage_key_via"] = via

    with (
        Counter(CursorWrapper, "execute") as q1,
        Counter(CursorWrapper, "executemany") as q2,
        Counter(PasswordHasher, "verify") as a,
    ):
        if verifier is None:
            out["garbage_key_us"] = _per_call_us(services.verify_key, garbage, n_fast)
        else:
            out["garbage_key_us"] = asyncio.run(_per_call_us_async(verifier, garbage, n_fast))
        out["garbage_key_db_queries"] = q1.count + q2.count
        out["garbage_key_argon2"] = a.count

    if verifier is None:
        out["cached_verify_us"] = None
        out["argon2_computations_concurrent_first"] = None
        return out

    # Created here: the ORM refuses to run on the event loop.
    _, fresh = services.key_create(name="bench-auth-fresh", model_patterns="*", via="bench")

    async def gateway_figures() -> None:
        assert await _call(verifier, raw) is not None  # fill the cache
        out["cached_verify_us"] = await _per_call_us_async(verifier, raw, n_fast)
        n = 200 if quick else 1000
        with Counter(PasswordHasher, "verify") as argon2_calls:
            results = await asyncio.gather(*(_call(verifier, fresh) for _ in range(n)), return_exceptions=True)
        out["concurrent_first_requests"] = n
        out["concurrent_first_ok"] = sum(r is not None and not isinstance(r, BaseException) for r in results)
        out["argon2_computations_concurrent_first"] = argon2_calls.count
        out["cache_stats"] = {k: getattr(cache.stats, k) for k in cache.stats.__slots__}

    asyncio.run(gateway_figures())
    cache.close()
    _attack_figures(out, raw, quick)
    return out


def _request(raw: str, address: str):
    from gateway.dialects import Dialect
    from gateway.http import GatewayRequest

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "headers": [(b"authorization", f"Bearer {raw}".encode())],
        "client": (address, 40000),
    }
    return GatewayRequest.from_scope(scope, Dialect.OPENAI, "models")


def _forged(real: str, n: int) -> str:
    from keys import crypto

    head = real[:18] + f"{n:032d}"
    return head + crypto.checksum(head)


def _attack_figures(out: dict, warm_raw: str, quick: bool) -> None:
    """Issue #10: forged keys for known public ids, through the gateway's authentication as
    gateway.asgi builds it (real cache, real verify_key, real argon2 and its limiter)."""
    from argon2 import PasswordHasher
    from django.conf import settings

    from gateway.authentication import FailureCounter, KeyAuthentication
    from gateway.cache import KeyCache
    from keys import costly, services

    def gateway() -> tuple[KeyAuthentication, KeyCache]:
        cache = KeyCache(pepper=settings.KEYGATE_PEPPER.encode(), prefix=settings.KEYGATE_KEY_PREFIX, state_ttl=0.05)
        return KeyAuthentication(cache, FailureCounter(limit=settings.KEYGATE_AUTH_FAILURES_PER_MINUTE)), cache

    async def attempt(auth: KeyAuthentication, raw: str, address: str) -> int:
        try:
            await auth.aauthenticate(_request(raw, address))
        except Exception as error:
            return getattr(error, "status_code", 500)
        return 200

    # 1. 300 concurrent forged keys for one public id from one address.
    _, victim = services.key_create(name="bench-victim", model_patterns="*", via="bench")
    auth, cache = gateway()

    async def forged_burst() -> list[int]:
        return await asyncio.gather(*(attempt(auth, _forged(victim, n), "198.51.100.7") for n in range(300)))

    with Counter(PasswordHasher, "verify") as argon2_calls:
        statuses = asyncio.run(forged_burst())
    cache.close()
    out["forged_300_one_public_id_one_address_argon2_runs"] = argon2_calls.count
    out["forged_300_one_public_id_one_address_statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}

    # 2. 150 addresses, each forging 10 keys for its own known public id; a warm key meanwhile.
    addresses = 30 if quick else 150
    victims = [services.key_create(name=f"bench-v{n}", model_patterns="*", via="bench")[1] for n in range(addresses)]
    auth, cache = gateway()
    limiter = costly.argon2_limiter()
    runs_before, refused_before = limiter.stats.runs, limiter.stats.refused
    latencies: list[float] = []

    async def warm_key(done: asyncio.Event) -> None:
        await attempt(auth, warm_raw, "192.0.2.1")
        while not done.is_set():
            started = time.perf_counter()
            assert await attempt(auth, warm_raw, "192.0.2.1") == 200
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)

    async def burst() -> tuple[list[int], float]:
        done = asyncio.Event()
        prober = asyncio.create_task(warm_key(done))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        statuses = await asyncio.gather(
            *(
                attempt(auth, _forged(victim, i), f"203.0.{n // 250}.{n % 250}")
                for i in range(10)
                for n, victim in enumerate(victims)
            )
        )
        elapsed = time.perf_counter() - started
        done.set()
        await prober
        return statuses, elapsed

    with Counter(PasswordHasher, "verify") as argon2_calls:
        statuses, elapsed = asyncio.run(burst())
    cache.close()
    latencies.sort()
    out["burst_addresses"] = addresses
    out["burst_requests"] = len(statuses)
    out["burst_seconds"] = round(elapsed, 2)
    out["burst_argon2_runs"] = argon2_calls.count
    out["burst_statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    out["burst_limiter"] = {
        "runs": limiter.stats.runs - runs_before,
        "refused": limiter.stats.refused - refused_before,
        "peak_running": limiter.stats.peak_running,
        "max_concurrent": limiter.max_concurrent,
        "peak_memory_mib": limiter.stats.peak_memory_kib // 1024,
    }
    out["warm_key_during_burst_requests"] = len(latencies)
    out["warm_key_during_burst_p50_ms"] = round(statistics.median(latencies), 3) if latencies else None
    out["warm_key_during_burst_p99_ms"] = (
        round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3) if latencies else None
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true", help="print one JSON line (for bench/run.py)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        result = run(args.quick)
    except Exception as error:  # report, never crash the bench run
        result = {"available": False, "reason": f"{type(error).__name__}: {error}"}
    if not args.json:
        for key, value in result.items():
            print(f"{key}: {value}")
    else:
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
