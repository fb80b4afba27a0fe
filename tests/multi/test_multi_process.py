"""Limits, revocation and usage hold across processes: two Keygate servers × two workers,
one PostgreSQL, one Redis, a real upstream on loopback."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time

import aiohttp
import pytest

from tests.support.live import ROOT, KeygateServer

pytestmark = [pytest.mark.multi, pytest.mark.live]

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}


async def _post(session: aiohttp.ClientSession, url: str, key: str, body: dict) -> tuple[int, dict]:
    async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, await r.json(content_type=None)


async def _burst(urls: list[str], key: str, count: int, concurrency: int, body: dict = CHAT) -> list[tuple[int, dict]]:
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(i: int) -> tuple[int, dict]:
            async with semaphore:
                return await _post(session, urls[i % len(urls)], key, body)

        return await asyncio.gather(*(one(i) for i in range(count)))


def _usage(server: KeygateServer, key: str) -> list[dict]:
    code = (
        "import json; from keys.models import UsageRecord as U;"
        f"print(json.dumps(list(U.objects.filter(key__public_id='{key[6:18]}').values("
        "'status_code','input_tokens','output_tokens','aborted','streamed','request_id'))))"
    )
    return json.loads(server.shell(code).strip().splitlines()[-1])


def _wait_for_usage(server: KeygateServer, key: str, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows = _usage(server, key)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.3)
        rows = _usage(server, key)
    return rows


def test_a_global_rpm_limit_holds_across_two_servers(two_servers) -> None:
    rpm = 30
    (key,) = two_servers[0].make_keys({"name": "rpm", "model_patterns": "*", "rpm_limit": rpm})
    started = time.monotonic()
    results = asyncio.run(_burst([s.url for s in two_servers], key, count=3 * rpm, concurrency=8))
    elapsed = time.monotonic() - started
    statuses = [status for status, _ in results]
    refill = math.ceil(elapsed * rpm / 60)
    print(f"rpm={rpm}: {statuses.count(200)} allowed, {statuses.count(429)} refused in {elapsed:.2f}s")
    assert set(statuses) <= {200, 429}
    assert rpm <= statuses.count(200) <= rpm + refill
    refused = next(body for status, body in results if status == 429)
    assert refused["error"]["code"] == "rate_limit_exceeded"


def test_a_token_budget_holds_under_50_concurrent_requests(two_servers) -> None:
    budget = 400
    (key,) = two_servers[1].make_keys(
        {"name": "budget", "model_patterns": "*", "budget_tokens": budget, "budget_period": "total"}
    )
    results = asyncio.run(_burst([s.url for s in two_servers], key, count=50, concurrency=50))
    ok = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status == 429]
    used = sum(body["usage"]["total_tokens"] for body in ok)
    print(f"budget={budget}: {len(ok)} admitted using {used} tokens, {len(refused)} refused")
    assert ok and refused and len(ok) + len(refused) == 50
    # Each request reserved len(body)/4 + max_tokens (>= what it used): no overrun at all.
    assert used <= budget
    assert all(body["error"]["code"] == "key_budget_exceeded" for body in refused), {
        b["error"]["code"] for b in refused
    }
    rows = _wait_for_usage(two_servers[0], key, count=50)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows if r["status_code"] == 200) == used


def test_a_key_revoked_through_one_process_is_refused_by_another_within_one_second(two_servers) -> None:
    first, second = two_servers
    (key,) = first.make_keys({"name": "revoke-me", "model_patterns": "*"})

    async def scenario() -> float:
        async with aiohttp.ClientSession() as session:
            for _ in range(4):  # warm both workers of the second server
                assert (await _post(session, second.url, key, CHAT))[0] == 200
            revoke = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                "keys",
                "revoke",
                key[6:18],
                env=first.env,
                cwd=str(ROOT),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            assert await revoke.wait() == 0
            revoked_at = time.monotonic()
            while time.monotonic() - revoked_at < 5:
                status, _ = await _post(session, second.url, key, CHAT)
                if status == 401:
                    return time.monotonic() - revoked_at
                await asyncio.sleep(0.005)
            return math.inf

    propagation = asyncio.run(scenario())
    print(f"revocation propagated to the other server in {propagation * 1000:.1f} ms")
    assert propagation <= 1.0


def test_usage_counts_equal_the_requests_sent_including_aborted_streams(tmp_path_factory, shared_env) -> None:
    servers = [KeygateServer(tmp_path_factory.mktemp(f"usage{i}"), env=shared_env, workers=2) for i in range(2)]
    for server in servers:
        server.start()
    try:
        (key,) = servers[0].make_keys({"name": "usage", "model_patterns": "*"})
        plain = asyncio.run(_burst([s.url for s in servers], key, count=40, concurrency=10))
        assert all(status == 200 for status, _ in plain)

        async def aborted_streams(count: int) -> int:
            body = {
                "model": "mock-slow-stream",
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
                "mock_chunks": 20,
                "mock_delay": 0.05,
            }
            async with aiohttp.ClientSession() as session:
                for i in range(count):
                    url = servers[i % 2].url
                    async with session.post(
                        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                    ) as response:
                        assert response.status == 200
                        await response.content.readuntil(b"\n\n")  # the first event, then hang up
                        response.close()
            return count

        aborted = asyncio.run(aborted_streams(6))
    finally:
        for server in servers:
            server.stop()  # SIGTERM: a clean stop flushes the usage queue
    rows = _usage(servers[0], key)
    assert len(rows) == 40 + aborted
    assert len({r["request_id"] for r in rows}) == len(rows)  # nothing counted twice
    assert sum(r["aborted"] for r in rows) == aborted
    assert all(r["input_tokens"] > 0 for r in rows)  # aborted streams: estimated from the request
    assert all(r["output_tokens"] > 0 for r in rows if not r["aborted"])


def test_without_redis_limits_fall_back_to_each_process_and_keep_serving(tmp_path, shared_env, private_redis) -> None:
    url, redis_process = private_redis
    server = KeygateServer(tmp_path / "fallback", env={**shared_env, "REDIS_URL": url}, workers=1).start()
    try:
        (key,) = server.make_keys({"name": "fallback", "model_patterns": "*", "rpm_limit": 5})
        assert asyncio.run(_burst([server.url], key, count=2, concurrency=1))[0][0] == 200
        redis_process.kill()
        redis_process.wait(timeout=5)
        statuses = [status for status, _ in asyncio.run(_burst([server.url], key, count=10, concurrency=1))]
        assert statuses.count(200) == 5 and statuses.count(429) == 5  # still limited, by this process alone
        assert "Redis is unavailable for limits" in server.logs()
    finally:
        server.stop()
