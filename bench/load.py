"""Bounded async load clients for bench/run.py (aiohttp).

Every loop here stops at a fixed request count or a time limit, whichever comes first.
Latencies are wall-clock seconds from just before the request is sent to the last byte
of the response (non-streaming) or to the first body byte (streaming TTFB).
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

# Upstream send time stamped into every SSE frame by bench/sse_upstream.py.
_SENT_AT = re.compile(rb'"system_fingerprint":"t(\d+)"')
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize_ms(values_s: list[float]) -> dict:
    """n, mean and percentiles in milliseconds of a list of seconds."""
    if not values_s:
        return {"n": 0}
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "mean": sum(ms) / len(ms),
        "min": min(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def _session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=30),
        timeout=_TIMEOUT,
        auto_decompress=False,
    )


async def latency_run(
    url: str,
    headers: dict,
    body: bytes,
    concurrency: int,
    count: int,
    time_limit: float,
    count_header: str | None = None,
) -> dict:
    """`concurrency` closed-loop workers share `count` requests, stopping at `time_limit` s.

    Connections are opened (one warm-up request each, not recorded) before timing starts.
    With `count_header`, the result's "header_counts" counts that response header's values
    over the timed requests (e.g. x-keygate-attempts of a failover route).
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    header_counts: dict[str, int] = {}
    errors = 0
    remaining = count

    async with _session(concurrency) as session:

        async def one() -> float | None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
                    seen = response.headers.get(count_header, "-") if count_header else None
            except (TimeoutError, aiohttp.ClientError):
                errors += 1
                return None
            elapsed = time.perf_counter() - t0
            statuses[status] = statuses.get(status, 0) + 1
            if seen is not None:
                header_counts[seen] = header_counts.get(seen, 0) + 1
            return elapsed if status == 200 else None

        await asyncio.gather(*(one() for _ in range(concurrency)))
        statuses.clear()
        header_counts.clear()
        errors = 0
        deadline = time.perf_counter() + time_limit

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                elapsed = await one()
                if elapsed is not None:
                    latencies.append(elapsed)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    failed = errors + sum(n for status, n in statuses.items() if status != 200)
    return {
        "latencies": latencies,
        "failed": failed,
        "statuses": statuses,
        "wall_s": wall,
        "header_counts": header_counts,
    }


async def stream_once(
    session: aiohttp.ClientSession, url: str, headers: dict, body: bytes, first_byte: asyncio.Event | None = None
) -> dict:
    """One SSE request: TTFB, per-frame arrival and upstream send times, completion."""
    t0 = time.perf_counter()
    result = {"ok": False, "status": 0, "ttfb_s": None, "frames": [], "done": False, "error": None}
    try:
        async with session.post(url, data=body, headers=headers) as response:
            result["status"] = response.status
            async for line in response.content:
                now = time.perf_counter()
                now_ns = time.time_ns()
                if result["ttfb_s"] is None:
                    result["ttfb_s"] = now - t0
                    if first_byte is not None:
                        first_byte.set()
                if line.startswith(b"data: [DONE]"):
                    result["done"] = True
                elif line.startswith(b"data: "):
                    sent = _SENT_AT.search(line)
                    # (arrival on the perf clock, arrival wall ns, upstream send wall ns)
                    result["frames"].append((now, now_ns, int(sent.group(1)) if sent else None))
        result["ok"] = result["status"] == 200 and result["done"]
    except (TimeoutError, aiohttp.ClientError) as error:
        result["error"] = type(error).__name__
    return result


async def ttfb_run(url: str, headers: dict, body: bytes, count: int, time_limit: float) -> list[dict]:
    """`count` streams one after another on one warm connection."""
    results = []
    async with _session(1) as session:
        await stream_once(session, url, headers, body)  # connect + warm
        deadline = time.perf_counter() + time_limit
        while len(results) < count and time.perf_counter() < deadline:
            results.append(await stream_once(session, url, headers, body))
    return results


async def concurrent_streams(url: str, headers: dict, body: bytes, n: int, timeout: float) -> list[dict]:
    """`n` streams at once (bounded by `timeout` in total)."""
    async with _session(0) as session:
        tasks = [asyncio.create_task(stream_once(session, url, headers, body)) for _ in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        return [t.result() for t in done if not t.cancelled() and t.exception() is None]


async def open_streams(
    url: str, headers: dict, body: bytes, n: int, sample, first_timeout: float, total_timeout: float
) -> dict:
    """Hold `n` streams open at once; call `sample()` once all have their first byte.

    Returns how many got a first byte / completed, the time to open them all, and the
    sample taken while all of them were open.
    """
    async with _session(0) as session:
        events = [asyncio.Event() for _ in range(n)]
        started = time.perf_counter()
        tasks = [asyncio.create_task(stream_once(session, url, headers, body, e)) for e in events]
        deadline = started + first_timeout
        while time.perf_counter() < deadline and not all(e.is_set() for e in events):
            await asyncio.sleep(0.05)
        opened = sum(e.is_set() for e in events)
        open_s = time.perf_counter() - started
        await asyncio.sleep(0.5)  # let buffers and per-stream state settle
        taken = sample()
        done, pending = await asyncio.wait(tasks, timeout=max(1.0, total_timeout - (time.perf_counter() - started)))
        for task in pending:
            task.cancel()
        results = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    return {
        "streams": n,
        "first_byte": opened,
        "completed": sum(r["ok"] for r in results),
        "open_all_s": open_s,
        "sample": taken,
    }
