"""The verified-key cache: how the gateway avoids argon2 (and the database) per request.

Three layers, all in process memory, none persisted or logged (DESIGN §3):

1. ``digest → key id`` for keys that verified. The digest is HMAC-SHA256(pepper, raw key), so the
   map holds nothing that can be replayed or tested offline without the pepper.
2. ``digest → "no"`` for presented keys that failed verification, kept briefly, so a client
   hammering a wrong key costs one argon2 per ``negative_ttl`` at most. (Garbage never gets
   this far: the checksum rejects it first, with no I/O.)
3. ``key id → KeyState`` with a short TTL. A warm key is authorised from memory alone: no DB
   query, no thread hop. Past half its TTL the state is re-read in the background (one read per
   key at a time); past its TTL a request waits for a read — unless one is already under way, in
   which case the stale state is served while it lasts, up to ``max_stale`` seconds after the
   last read (so a slow database delays the cross-process revocation bound to ``max_stale`` at
   worst, never indefinitely). ``drop(key_id)`` — called on every ``keys.services`` write in
   this process and on cross-process notifications — makes it immediate: the state is forgotten
   and a read already under way is not allowed to put the old state back.

Cold work is bounded and counted before it runs (SECURITY.md): a verification about to start is
first admitted by the caller's :class:`~keys.costly.AttemptGuard` (per address and per public
id; a key refused from memory, or joining a verification under way, costs nothing and is not
counted); concurrent misses for one key share one verification (single-flight: 1,000
simultaneous first requests cost exactly one argon2 computation); at most ``max_pending``
verifications are waiting or running, and beyond that a miss is refused at once with
:class:`~keys.costly.Argon2Busy`. Verifications run in their own small thread pool, and argon2
inside them in the process's argon2 limiter; state reads have a pool of their own, so a warm key
never waits behind argon2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import close_old_connections

from keys import costly, crypto, services
from keys.services import KeyState

log = logging.getLogger("keygate.gateway")


@dataclass(slots=True)
class _Entry:
    state: KeyState
    fetched: float


@dataclass(slots=True, eq=False)
class _Read:
    """A state read under way; ``current`` turns False when ``drop()`` outdates it."""

    future: asyncio.Future[KeyState | None]
    current: bool = True


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    stale_hits: int = 0
    misses: int = 0
    verifications: int = 0
    negative_hits: int = 0
    state_reads: int = 0
    refused: int = 0


def _in_thread(function: Callable, *args: object) -> object:
    """Run ORM work in a pool thread with Django's connection hygiene around it."""
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


class KeyCache:
    """Verified keys and their state for one process. All methods run on the event loop."""

    def __init__(
        self,
        *,
        pepper: bytes,
        prefix: str,
        state_ttl: float = 1.0,
        max_stale: float | None = None,
        negative_ttl: float = 5.0,
        max_keys: int = 100_000,
        threads: int = 4,
        state_threads: int = 2,
        max_pending: int = 64,
        verify: Callable[[str], KeyState | None] = services.verify_key,
        load_state: Callable[[int], KeyState | None] = services.get_key_state,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pepper = pepper
        self._prefix = prefix
        self.state_ttl = state_ttl
        self.max_stale = 3 * state_ttl if max_stale is None else max_stale
        self.negative_ttl = negative_ttl
        self.max_pending = max_pending
        self._max_keys = max_keys
        self._verify = verify
        self._load_state = load_state
        self._clock = clock
        self._ids: OrderedDict[bytes, int] = OrderedDict()
        self._negative: dict[bytes, float] = {}
        self._states: dict[int, _Entry] = {}
        self._inflight: dict[bytes, asyncio.Future[KeyState | None]] = {}
        self._reads: dict[int, _Read] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="keygate-verify")
        self._state_executor = ThreadPoolExecutor(max_workers=state_threads, thread_name_prefix="keygate-state")
        self.stats = CacheStats()

    # --- public ----------------------------------------------------------------------------

    async def authenticate(
        self, raw: str, address: str | None = None, guard: costly.AttemptGuard | None = None
    ) -> tuple[KeyState | None, str]:
        """The state of the key ``raw`` names, or ``None``; and why (for X-Debug-Auth).

        The state returned may be revoked or expired: the caller decides what that means. A
        well-formed key this process has not verified is first reserved with ``guard`` for
        ``address`` (which may raise :class:`~keys.costly.AttemptsExceeded`), and given back
        when it proves a real key or does no work; :class:`~keys.costly.Argon2Busy` when the
        verification line is full.
        """
        digest = crypto.digest(self._pepper, raw)
        key_id = self._ids.get(digest)
        if key_id is not None:
            entry = self._states.get(key_id)
            if entry is not None:
                age = self._clock() - entry.fetched
                if age < self.state_ttl / 2:
                    self.stats.hits += 1
                    return entry.state, "cached"
                reading = key_id in self._reads
                if age < self.state_ttl or (reading and age < self.max_stale):
                    self.stats.hits += 1
                    if reading:
                        self.stats.stale_hits += 1
                    else:
                        self._start_read(key_id)  # refresh in the background; answer now
                    return entry.state, "cached"
            state = await self._read_state(key_id)
            if state is not None:
                return state, "refreshed"
            self._ids.pop(digest, None)  # the key is gone: forget that it ever verified
        parsed = crypto.parse_key(raw, self._prefix)
        if parsed is None:
            return None, "malformed"  # free, and never counted against anyone
        expires = self._negative.get(digest)
        if expires is not None:
            if expires > self._clock():
                self.stats.negative_hits += 1
                return None, "invalid"  # free too: answered from memory
            del self._negative[digest]
        self.stats.misses += 1
        pending = self._inflight.get(digest)
        if pending is not None:  # joins a verification already under way: costs nothing more
            return await asyncio.shield(pending), "verified"
        if guard is not None:
            guard.reserve(address, parsed.public_id)
        try:
            state = await self._verify_new(digest, raw)
        except BaseException:
            if guard is not None:
                guard.release(address, parsed.public_id)
            raise
        if state is not None and guard is not None:
            guard.release(address, parsed.public_id)
        return state, "verified"

    def knows(self, raw: str) -> bool:
        """True when ``raw`` verified earlier in this process (no I/O)."""
        return crypto.digest(self._pepper, raw) in self._ids

    def drop(self, key_id: int) -> None:
        """Forget a key's state so the next request re-reads it (its verification stays valid)."""
        self._states.pop(key_id, None)
        read = self._reads.pop(key_id, None)
        if read is not None:
            read.current = False  # it may have read the state from before the change

    def clear(self) -> None:
        self._ids.clear()
        self._negative.clear()
        self._states.clear()
        for read in self._reads.values():
            read.current = False
        self._reads.clear()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._state_executor.shutdown(wait=False, cancel_futures=True)

    # --- verification ----------------------------------------------------------------------

    async def _verify_new(self, digest: bytes, raw: str) -> KeyState | None:
        if len(self._inflight) >= self.max_pending:
            self.stats.refused += 1
            raise costly.Argon2Busy()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[KeyState | None] = loop.create_future()
        self._inflight[digest] = future
        try:
            self.stats.verifications += 1
            state = await loop.run_in_executor(self._executor, _in_thread, self._verify, raw)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(digest, None)
        if state is None:
            self._negative[digest] = self._clock() + self.negative_ttl
            if len(self._negative) > self._max_keys:
                self._negative.clear()
        else:
            self._remember(digest, state)
        future.set_result(state)
        return state

    def _remember(self, digest: bytes, state: KeyState) -> None:
        self._ids[digest] = state.id
        self._ids.move_to_end(digest)
        while len(self._ids) > self._max_keys:
            _, old_id = self._ids.popitem(last=False)
            self._states.pop(old_id, None)
        self._states[state.id] = _Entry(state, self._clock())

    # --- state reads -----------------------------------------------------------------------

    async def _read_state(self, key_id: int) -> KeyState | None:
        read = self._reads.get(key_id) or self._start_read(key_id)
        return await asyncio.shield(read.future)

    def _start_read(self, key_id: int) -> _Read:
        loop = asyncio.get_running_loop()
        read = _Read(loop.create_future())
        self._reads[key_id] = read
        self.stats.state_reads += 1
        task = loop.create_task(self._run_read(key_id, read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return read

    async def _run_read(self, key_id: int, read: _Read) -> None:
        loop = asyncio.get_running_loop()
        try:
            state = await loop.run_in_executor(self._state_executor, _in_thread, self._load_state, key_id)
        except BaseException as error:  # a failed read leaves the entry to age out on its own
            if self._reads.get(key_id) is read:
                del self._reads[key_id]
            read.future.set_exception(error)
            read.future.exception()  # mark retrieved: a background refresh has no waiter
            if not isinstance(error, Exception):
                raise
            log.warning("reading the state of key %s failed: %s", key_id, error)
            return
        if self._reads.get(key_id) is read:
            del self._reads[key_id]
        if read.current:
            if state is None:
                self._states.pop(key_id, None)
            else:
                self._states[key_id] = _Entry(state, self._clock())
        read.future.set_result(state)
