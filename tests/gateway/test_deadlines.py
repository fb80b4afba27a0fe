"""gateway.deadlines: asyncio.timeout's contract at a fraction of its cost (issue #16).

Run on uvloop, the loop the server runs, and on the standard loop."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest
import uvloop

from gateway import deadlines
from gateway.deadlines import deadline, idle_limit

LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])


def _pending(loop: asyncio.AbstractEventLoop) -> int:
    return sum(len(entries) for entries in deadlines._wheel(loop).buckets.values())


@LOOPS
def test_a_block_that_overruns_raises_timeout_error_after_the_delay_and_within_a_step(run):
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with deadline(0.2):
                await asyncio.sleep(5)
        return time.monotonic() - started

    elapsed = run(main())
    assert 0.2 <= elapsed < 0.2 + 0.01 + 0.15  # never early; late by at most a 10 ms step (+ scheduling)


@LOOPS
def test_a_block_that_finishes_in_time_leaves_nothing_behind_and_is_not_cancelled_later(run):
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        for _ in range(200):
            with deadline(0.05):
                await asyncio.sleep(0)
        left = _pending(loop)
        await asyncio.sleep(0.15)  # past every one of those deadlines: none of them fires
        return left, asyncio.current_task().cancelling()

    assert run(main()) == (0, 0)


@LOOPS
def test_none_is_no_limit(run):
    async def main() -> str:
        with deadline(None) as limit:
            await asyncio.sleep(0.05)
        return "done" if not limit.expired else "expired"

    assert run(main()) == "done"


@LOOPS
def test_a_cancellation_from_elsewhere_stays_a_cancellation(run):
    async def victim(entered: asyncio.Event) -> None:
        with deadline(10):
            entered.set()
            await asyncio.sleep(5)

    async def main() -> str:
        entered = asyncio.Event()
        task = asyncio.ensure_future(victim(entered))
        await entered.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        except TimeoutError:
            return "timeout"
        return "finished"

    assert run(main()) == "cancelled"


@LOOPS
def test_the_inner_of_two_nested_deadlines_fires_and_the_outer_one_keeps_running(run):
    async def main() -> tuple[str, float]:
        started = time.monotonic()
        with deadline(2) as outer:
            try:
                with deadline(0.05):
                    await asyncio.sleep(1)
            except TimeoutError:
                inner = "inner timed out"
            await asyncio.sleep(0.05)  # the outer limit is still there and not spent
        assert not outer.expired
        return inner, time.monotonic() - started

    inner, elapsed = run(main())
    assert inner == "inner timed out"
    assert elapsed < 1


@LOOPS
def test_an_idle_limit_counts_each_wait_alone_and_never_the_time_between_waits(run):
    async def main() -> tuple[float, float]:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            # Waits half the limit long, so a busy machine's stall does not make one overrun it.
            with idle_limit(0.2) as idle:
                for _ in range(4):  # 4 waits of 100 ms: each under the limit, together over it
                    idle.waiting()
                    await asyncio.sleep(0.1)
                    idle.resting()
                await asyncio.sleep(0.3)  # between waits (a relay sending on): never counted
                survived = time.monotonic() - started
                idle.waiting()
                await asyncio.sleep(5)
        return survived, time.monotonic() - started - survived

    survived, last_wait = run(main())
    # 0.7 s of sleeps, over three limits, before the last wait began (uvloop's timers, kept in
    # whole ms, may end each sleep up to a ms early, so not ">= 0.7").
    assert survived > 0.6
    assert 0.2 <= last_wait < 0.2 + 0.01 + 0.15


@LOOPS
def test_an_idle_limit_that_comes_due_between_waits_fires_a_limit_after_the_next_wait_began(run):
    """Due while resting, the entry is put back; due again while the wait is younger than the
    limit, it is put back for the rest of it (not for a whole limit more)."""

    async def main() -> float:
        with pytest.raises(TimeoutError):
            with idle_limit(0.4) as idle:
                await asyncio.sleep(0.6)  # due at 0.4 while resting: put back, due again at 0.8
                began = time.monotonic()
                idle.waiting()  # at 0.8 it has waited 0.2: due again at 1.0
                await asyncio.sleep(5)
        return time.monotonic() - began

    assert 0.4 <= run(main()) < 0.4 + 0.01 + 0.15


@LOOPS
def test_an_idle_limit_in_an_async_generator_never_cancels_its_consumer(run):
    """The shape of a streamed answer: the generator waits for chunks under the limit, its
    consumer takes longer than the limit over each one, and only a stalled read times out."""

    async def chunks(stall_after: int):
        with idle_limit(0.2) as idle:
            for index in range(10):
                idle.waiting()
                await asyncio.sleep(5 if index == stall_after else 0.01)
                idle.resting()
                yield index

    async def main() -> tuple[list[int], int]:
        seen: list[int] = []
        with pytest.raises(TimeoutError):
            async for index in chunks(stall_after=4):
                seen.append(index)
                await asyncio.sleep(0.3)  # the consumer's own await, over the limit
        return seen, _pending(asyncio.get_running_loop())

    assert run(main()) == ([0, 1, 2, 3], 0)


@LOOPS
def test_many_concurrent_deadlines_of_different_lengths_each_fire_at_their_own_time(run):
    async def one(delay: float, results: list[tuple[float, float]]) -> None:
        started = time.monotonic()
        try:
            with deadline(delay):
                await asyncio.sleep(10)
        except TimeoutError:
            results.append((delay, time.monotonic() - started))

    async def main() -> list[tuple[float, float]]:
        results: list[tuple[float, float]] = []
        delays = [0.02 * (i % 10 + 1) for i in range(300)]  # 20 … 200 ms, in no order
        await asyncio.gather(*(one(d, results) for d in reversed(delays)))
        return results

    results = run(main())
    assert len(results) == 300
    for delay, elapsed in results:
        assert delay <= elapsed < delay + 0.01 + 0.2


@LOOPS
def test_a_shorter_deadline_added_after_a_longer_one_still_fires_on_time(run):
    """The wheel's one timer is re-armed for an earlier step."""

    async def main() -> float:
        async def hold() -> None:
            with deadline(30):
                await asyncio.sleep(0.2)

        long = asyncio.ensure_future(hold())
        await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with deadline(0.05):
                await asyncio.sleep(5)
        elapsed = time.monotonic() - started
        await long
        return elapsed

    assert run(main()) < 0.05 + 0.01 + 0.15


def test_outside_a_task_it_is_an_error_as_asyncio_timeout_is():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        error: list[BaseException] = []

        def callback() -> None:
            try:
                with deadline(1):
                    pass
            except RuntimeError as caught:
                error.append(caught)

        loop.call_soon(callback)
        await asyncio.sleep(0.01)
        assert error and "inside a task" in str(error[0])

    asyncio.run(main())


def test_each_event_loop_has_its_own_wheel():
    """A process may run several loops one after another (tests do): the wheel, and its timer,
    of a loop that is gone never serve the next one."""

    async def main() -> tuple[asyncio.AbstractEventLoop, float]:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with deadline(0.02):
                await asyncio.sleep(1)
        return deadlines._wheel(asyncio.get_running_loop()).loop, time.monotonic() - started

    first_loop, first = asyncio.run(main())
    gone = weakref.ref(first_loop)
    del first_loop
    _, second = uvloop.run(main())
    assert first < 0.5 and second < 0.5
    gc.collect()
    assert gone() is None  # nothing of the wheels keeps a closed loop alive
