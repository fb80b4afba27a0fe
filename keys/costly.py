"""Costly checks, bounded and counted before they run (SECURITY.md, "Costly checks under attack").

Two tools, shared by every surface that checks a secret — the gateway (/v1/), the management
API (/api/v1/) and sign-in (dashboard and admin). Neutral ground: no ORM, no gateway import.

- :class:`Argon2Limiter`: one per process (:func:`argon2_limiter`) for **all** argon2 work —
  key verifications (19 MiB each by default) and Django's password hasher (100 MiB each, the
  dummy hash for unknown usernames included). A job takes a slot weighted by its memory; at
  most ``max_concurrent`` run and their memory stays within ``memory_kib`` (one job runs alone
  whatever its size). Up to ``max_queued`` callers wait, first come first served, at most
  ``max_wait`` seconds; anyone beyond that is refused at once with :class:`Argon2Busy`, which
  each surface renders as 503 + ``Retry-After`` in its own dialect. Never an unbounded queue,
  never a thread per attempt running argon2.
- :class:`AttemptGuard`: an attempt is counted *before* its lookup and argon2 start, per client
  address and per public id, and given back when it proves a real key. A check-then-count
  guard holds only for sequential clients; this one holds at any concurrency, because the
  count is the admission. The counters are :class:`CacheWindowCounter` (Django's cache: Redis
  when configured, shared by every process) or any object with the same ``take`` /
  ``give_back`` pair (the gateway keeps its own in process memory).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

# What one Django Argon2PasswordHasher run costs when no better figure is known (its default
# memory_cost, in KiB): the weight of a sign-in attempt's slot.
PASSWORD_HASH_KIB = 102_400


class Argon2Busy(Exception):
    """Refused: the process's argon2 slots and queue are full. Retry after ``retry_after`` s."""

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__("argon2 capacity exhausted")
        self.retry_after = retry_after


class AttemptsExceeded(Exception):
    """Refused before any lookup: too many attempts for an address or a public id."""

    def __init__(self, wait: float) -> None:
        super().__init__("too many attempts")
        self.wait = wait


@dataclass(slots=True)
class LimiterStats:
    runs: int = 0
    refused: int = 0
    waited: int = 0
    peak_running: int = 0
    peak_memory_kib: int = 0


@dataclass(slots=True, eq=False)
class _Waiter:
    cost: int
    granted: bool = False
    event: threading.Event = field(default_factory=threading.Event)


class Argon2Limiter:
    """Slots for argon2 work in one process, weighted by memory, with a bounded FIFO queue.

    Thread-safe; callers block in :meth:`slot` (sync code: request threads, the gateway's
    verifier threads). ``retry_after`` is what a refused caller is told.
    """

    def __init__(
        self,
        *,
        max_concurrent: int,
        memory_kib: int,
        max_queued: int,
        max_wait: float,
        retry_after: float = 1.0,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.memory_kib = memory_kib
        self.max_queued = max_queued
        self.max_wait = max_wait
        self.retry_after = retry_after
        self.running = 0
        self.memory_used_kib = 0
        self.stats = LimiterStats()
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @contextmanager
    def slot(self, cost_kib: int) -> Iterator[None]:
        """Hold a slot of ``cost_kib`` while the block runs; raise :class:`Argon2Busy` if refused."""
        self.acquire(cost_kib)
        try:
            yield
        finally:
            self.release(cost_kib)

    def acquire(self, cost_kib: int) -> None:
        """Take a slot now, or wait in line (bounded), or raise :class:`Argon2Busy`."""
        with self._lock:
            if not self._queue and self._fits(cost_kib):
                self._take(cost_kib)
                return
            if len(self._queue) >= self.max_queued:
                self.stats.refused += 1
                raise Argon2Busy(self.retry_after)
            waiter = _Waiter(cost_kib)
            self._queue.append(waiter)
            self.stats.waited += 1
        waiter.event.wait(self.max_wait)
        with self._lock:
            if waiter.granted:  # granted in time, or just as the wait ended: the slot is ours
                return
            self._queue.remove(waiter)
            self.stats.refused += 1
            self._grant()  # leaving the head of the line may let the next one fit
        raise Argon2Busy(self.retry_after)

    def release(self, cost_kib: int) -> None:
        with self._lock:
            self.running -= 1
            self.memory_used_kib -= cost_kib
            self._grant()

    def _fits(self, cost_kib: int) -> bool:
        if self.running >= self.max_concurrent:
            return False
        # A job larger than the whole budget may still run, alone: refusing it forever helps nobody.
        return self.running == 0 or self.memory_used_kib + cost_kib <= self.memory_kib

    def _take(self, cost_kib: int) -> None:
        self.running += 1
        self.memory_used_kib += cost_kib
        self.stats.runs += 1
        self.stats.peak_running = max(self.stats.peak_running, self.running)
        self.stats.peak_memory_kib = max(self.stats.peak_memory_kib, self.memory_used_kib)

    def _grant(self) -> None:
        while self._queue and self._fits(self._queue[0].cost):
            waiter = self._queue.popleft()
            self._take(waiter.cost)
            waiter.granted = True
            waiter.event.set()


def default_concurrency() -> int:
    """At most 4 argon2 jobs at once by default, and never more than the machine's cores."""
    return max(1, min(4, os.cpu_count() or 1))


@lru_cache(maxsize=1)
def _limiter_for(max_concurrent: int, memory_kib: int, max_queued: int, max_wait: float) -> Argon2Limiter:
    return Argon2Limiter(max_concurrent=max_concurrent, memory_kib=memory_kib, max_queued=max_queued, max_wait=max_wait)


def argon2_limiter() -> Argon2Limiter:
    """The process's one limiter, sized by ``settings.KEYGATE_ARGON2_LIMITS``."""
    from django.conf import settings

    limits = settings.KEYGATE_ARGON2_LIMITS
    return _limiter_for(limits["max_concurrent"], limits["memory_kib"], limits["max_queued"], limits["max_wait"])


# --- attempts counted before the work ------------------------------------------------------


class Counter(Protocol):
    def take(self, name: str) -> float:
        """Count one attempt for ``name``: 0.0 when admitted, else the seconds until it may try again."""

    def give_back(self, name: str) -> None:
        """Undo one admitted attempt (it proved a real key, or did no work)."""


class CacheWindowCounter:
    """Attempts per name in fixed windows, in Django's cache: atomic ``add``/``incr``.

    With Redis every process counts together. Names are hashed (usernames may hold anything).
    A give-back that lands in the next window merely frees one attempt of that window.
    """

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        namespace: str,
        cache: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window = window
        self.namespace = namespace
        self._cache = cache
        self._clock = clock

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from django.core.cache import cache

            return cache
        return self._cache

    def _slot(self, name: str) -> tuple[str, float]:
        number = int(self._clock() // self.window)
        hashed = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"keygate:{self.namespace}:{hashed}:{number}", (number + 1) * self.window

    def take(self, name: str) -> float:
        if not self.limit:
            return 0.0
        key, ends = self._slot(name)
        timeout = int(self.window * 2) + 1
        if self.cache.add(key, 1, timeout=timeout):
            count = 1
        else:
            try:
                count = self.cache.incr(key)
            except ValueError:  # expired between add and incr
                self.cache.add(key, 1, timeout=timeout)
                count = 1
        if count > self.limit:
            return max(1.0, ends - self._clock())
        return 0.0

    def give_back(self, name: str) -> None:
        if not self.limit:
            return
        key, _ = self._slot(name)
        try:
            self.cache.decr(key)
        except ValueError:  # the window ended and its counter expired: nothing to give back
            pass

    def reset(self, name: str) -> None:
        """Forget this window's attempts for ``name`` (a successful sign-in resets the count)."""
        self.cache.delete(self._slot(name)[0])


class AttemptGuard:
    """Well-formed key attempts, counted per client address and per public id before any work.

    :meth:`reserve` counts the attempt (address first, then the public id) or raises
    :class:`AttemptsExceeded`; :meth:`release` gives both back once the attempt proved a real
    key (its hash matched, whatever its state) or did no work (argon2 refused it). A failure
    stays counted. Malformed keys never get here: callers reject them first, for free.
    """

    def __init__(self, per_address: Counter, per_key: Counter) -> None:
        self.per_address = per_address
        self.per_key = per_key

    def reserve(self, address: str | None, public_id: str) -> None:
        if address is not None:
            wait = self.per_address.take(address)
            if wait:
                raise AttemptsExceeded(wait)
        wait = self.per_key.take(public_id)
        if wait:
            raise AttemptsExceeded(wait)

    def release(self, address: str | None, public_id: str) -> None:
        if address is not None:
            self.per_address.give_back(address)
        self.per_key.give_back(public_id)


__all__ = [
    "PASSWORD_HASH_KIB",
    "Argon2Busy",
    "Argon2Limiter",
    "AttemptGuard",
    "AttemptsExceeded",
    "CacheWindowCounter",
    "argon2_limiter",
    "default_concurrency",
]
