"""Time limits on the proxy path: ``with deadline(seconds): await ...``.

The contract of ``async with asyncio.timeout(seconds)``: when the time is up, the task is
cancelled at the await it is in and the block raises ``TimeoutError``; a cancellation from
anywhere else stays a ``CancelledError``; ``None`` means no limit. It differs in one way: a
deadline fires up to a step late, never early. The step is a thousandth of the delay, at least
10 ms and at most 250 ms (120 s, the default first-byte timeout, fires within 120.12 s).

Why not ``asyncio.timeout``: every use creates a ``Timeout`` object and a timer handle on the
event loop (under uvloop a libuv timer allocated, started, stopped and closed), and every
forwarded request used one for its upstream call and one more per streamed chunk. Taking the
first-byte one out was worth −10 to −22 µs of CPU a request at 32 concurrent requests
(issue #16, measured in process). Here each event loop has one timer, armed for the earliest
pending step, and the deadlines that end in the same step share a bucket: entering a block is
a dict insert and leaving it a dict delete.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Any

#: Bounds of a deadline's step (its possible lateness), in milliseconds.
MIN_STEP_MS, MAX_STEP_MS = 10, 250


class _Wheel:
    """The pending deadlines of one event loop, by step (a time in ms), and its one timer."""

    __slots__ = ("armed", "buckets", "handle", "heap", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, dict[deadline, None]] = {}
        self.heap: list[int] = []  # the keys of ``buckets``, earliest first
        self.armed: int | None = None  # the step the timer is set for
        self.handle: asyncio.TimerHandle | None = None

    def add(self, entry: deadline, delay: float) -> int:
        step = min(MAX_STEP_MS, max(MIN_STEP_MS, int(delay)))  # delay in s → a thousandth of it in ms
        # From the clock, not loop.time(): uvloop's is kept in whole ms and read once per loop
        # iteration, so it can be a few ms behind, and a deadline computed from it fired early.
        # Plus 1 ms: libuv's timers run on a clock of their own, seen up to ~50 µs ahead of this one.
        key = -(-(int((_monotonic() + delay) * 1000) + 1) // step) * step  # rounded up: never early
        entries = self.buckets.get(key)
        if entries is None:
            entries = self.buckets[key] = {}
            heapq.heappush(self.heap, key)
            if self.armed is None or key < self.armed:
                self._arm(key)
        entries[entry] = None
        return key

    def discard(self, entry: deadline, key: int) -> None:
        # An emptied bucket stays until its step passes: deleting it would make a bucket that
        # fills again push its key into the heap once more (once per request when they come
        # one by one).
        entries = self.buckets.get(key)
        if entries is not None:
            entries.pop(entry, None)

    def _arm(self, key: int) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.armed = key
        self.handle = self.loop.call_at(key / 1000, self._fire)

    def _fire(self) -> None:
        self.handle = self.armed = None
        now = self.loop.time() * 1000
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] <= now:
            for entry in buckets.pop(heapq.heappop(heap), ()):
                entry.expire()
        if heap:
            self._arm(heap[0])


_get_running_loop, _current_task, _monotonic = asyncio.get_running_loop, asyncio.current_task, time.monotonic
_last: _Wheel | None = None


def _wheel(loop: asyncio.AbstractEventLoop) -> _Wheel:
    """The wheel new deadlines on ``loop`` go to: the last one made, if it is that loop's.

    A server process runs one loop, so one wheel. Where loops come and go (tests) or take turns
    (threads), a loop whose wheel is not the last one gets a new one; the old one still fires the
    deadlines it holds, on its own loop, and is freed with them. No registry keeps a closed loop.
    """
    global _last
    wheel = _last
    if wheel is None or wheel.loop is not loop:
        wheel = _last = _Wheel(loop)
    return wheel


class deadline:  # lower case: used like asyncio.timeout
    """``with deadline(seconds):`` around awaits, in a task: ``TimeoutError`` when time is up."""

    __slots__ = ("_cancelling", "_key", "_task", "_wheel", "delay", "expired")

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.expired = False
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> deadline:
        if self.delay is None:
            return self
        loop = _get_running_loop()
        task = _current_task(loop)
        if task is None:
            raise RuntimeError("deadline() must be used inside a task")
        wheel = _wheel(loop)
        self._task, self._cancelling, self._wheel = task, task.cancelling(), wheel
        self._key = wheel.add(self, self.delay)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if self._task is None:
            return
        if not self.expired:
            self._wheel.discard(self, self._key)
        elif self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from error

    def expire(self) -> None:
        self.expired = True
        assert self._task is not None
        self._task.cancel()


class idle_limit(deadline):  # lower case: used like deadline
    """``with idle_limit(seconds) as idle:`` around a loop of reads where only the waiting counts:
    ``idle.waiting()`` just before each await of the next piece and ``idle.resting()`` just
    after it. A wait that lasts ``seconds`` raises ``TimeoutError`` from that await; the time
    between waits never counts (an async generator suspended at its ``yield`` while the relay
    sends on what it read), and the task is never cancelled outside a wait.

    An upstream's idle timeout, once per stream: a ``deadline`` entered and left around every
    read cost ~2 µs a streamed chunk (a wheel insert and delete); this costs a clock read and two
    attribute writes. Its wheel entry comes due about once per ``seconds``: if the task is not
    waiting then, or has waited less, the entry is put back for the rest, so it fires up to a
    step late, never early, as a ``deadline`` does."""

    __slots__ = ("_since",)

    def __init__(self, delay: float | None) -> None:
        super().__init__(delay)
        self._since: float | None = None

    def waiting(self) -> None:
        self._since = _monotonic()

    def resting(self) -> None:
        self._since = None

    def expire(self) -> None:
        since, delay = self._since, self.delay
        assert delay is not None  # only a limit with a delay is on the wheel
        left = delay if since is None else since + delay - _monotonic()
        if left > 0:  # not waiting now, or not for long enough yet
            self._key = self._wheel.add(self, left)
            return
        super().expire()


__all__ = ["deadline", "idle_limit"]
