"""gateway.breaker_sync against a real Redis, in process: two "processes" (two boards, two
origins) on one event loop, each on a fake clock."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis

from gateway.breaker import BreakerBoard, BreakerPolicy, State
from gateway.breaker_sync import BreakerSync
from gateway.router import Router
from gateway.routing import Deployment, RouteEntry, Upstream
from tests.multi.conftest import REDIS_URL

pytestmark = pytest.mark.multi

KEY = "primary:gpt-4o"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _route() -> RouteEntry:
    def upstream(name: str) -> Upstream:
        return Upstream(
            id=hash(name),
            name=name,
            kind="openai",
            base_url=f"http://{name}.test/v1",
            credential=None,
            connect_timeout=1,
            first_byte_timeout=1,
            idle_timeout=1,
        )

    return RouteEntry(
        pattern="gpt-4o",
        deployments=(Deployment(upstream("primary"), "gpt-4o"), Deployment(upstream("backup"), "gpt-4o", priority=1)),
        priority=1,
    )


async def _pair(settings: object) -> tuple[list[BreakerSync], Clock]:
    settings.KEYGATE_REDIS_NAMESPACE = f"kgtest{secrets.token_hex(4)}"  # type: ignore[attr-defined]
    clock = Clock()
    syncs = []
    for origin in ("one", "two"):
        board = BreakerBoard(BreakerPolicy(failures=2, window=60, cooldown=30), clock=clock)
        sync = BreakerSync(Router(board), aioredis.Redis.from_url(REDIS_URL), aioredis.Redis.from_url(REDIS_URL))
        sync.origin = origin
        sync.start()
        syncs.append(sync)
    await asyncio.sleep(0.2)  # both subscribed
    return syncs, clock


async def _until(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def test_an_open_breaker_and_its_closing_reach_the_other_process(settings: object) -> None:
    async def scenario() -> None:
        (one, two), clock = await _pair(settings)
        try:
            one.board.failure(KEY, "upstream_503")
            one.board.failure(KEY, "upstream_503")
            await _until(lambda: two.board.state(KEY) is State.OPEN)
            assert two.board.get(KEY).last_error == "upstream_503"
            assert not two.board.acquire(KEY)

            clock.now += 30
            assert one.board.acquire(KEY)  # one takes the probe locally …
            one.board.success(KEY)  # … and it succeeds
            await _until(lambda: two.board.state(KEY) is State.CLOSED)
        finally:
            for sync in (one, two):
                await sync.stop()

    asyncio.run(scenario())


def test_one_probe_goes_out_across_processes(settings: object) -> None:
    async def scenario() -> None:
        (one, two), clock = await _pair(settings)
        try:
            one.board.failure(KEY, "upstream_503")
            one.board.failure(KEY, "upstream_503")
            await _until(lambda: two.board.state(KEY) is State.OPEN)
            clock.now += 30
            route = _route()

            picks = [await one.router.next(route, set()), await two.router.next(route, set())]

            assert [p.upstream.name for p in picks if p] == ["primary", "backup"]
        finally:
            for sync in (one, two):
                await sync.stop()

    asyncio.run(scenario())


def test_a_process_that_connects_later_adopts_the_breakers_open_now(settings: object) -> None:
    async def scenario() -> None:
        (one, two), clock = await _pair(settings)
        await two.stop()
        try:
            one.board.failure(KEY, "upstream_503")
            one.board.failure(KEY, "upstream_503")
            await asyncio.sleep(0.2)  # published and stored while "two" was away
            board = BreakerBoard(BreakerPolicy(failures=2, window=60, cooldown=30), clock=clock)
            late = BreakerSync(Router(board), aioredis.Redis.from_url(REDIS_URL), aioredis.Redis.from_url(REDIS_URL))
            late.origin = "late"
            late.start()
            try:
                await _until(lambda: board.state(KEY) is State.OPEN)
            finally:
                await late.stop()
        finally:
            await one.stop()

    asyncio.run(scenario())
