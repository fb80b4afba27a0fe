"""The verified-key cache: how the gateway avoids argon2 (and the database) per request.

Three layers, all in process memory, none persisted or logged (DESIGN §3):

1. ``digest → key id`` for keys that verified. The digest is HMAC-SHA256(pepper, raw key), so the
   map holds nothing that can be replayed or tested offline without the pepper.
2. ``digest → "no"`` for presented keys that failed verification, kept briefly, so a client
   hammering a wrong key costs one argon2 per ``negative_ttl`` at most. (Garbage never gets
   this far: the checksum rejects it first, with no I/O.)
3. ``key id → KeyState`` with a short TTL. A warm key is authorised from memory alone: no DB
   query, no thread hop. The state is re-read in the background when half its TTL has passed,
   and synchronously once its TTL is over, which bounds how stale a revocation can be in a
   process that did not see it happen. ``drop(key_id)`` — called on every ``keys.services``
   write in this process and on cross-process notifications — makes it immediate.

Concurrent misses for one key share one verification (single-flight): 1,000 simultaneous first
requests cost exactly one argon2 computation. Verification and state reads run in a small
dedicated thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import close_old_connections

from keys import crypto, services
from keys.services import KeyState

_MISSING = object()


@dataclass(slots=True)
class _Entry:
    state: KeyState
    fetched: float
    refreshing: bool = False


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    verifications: int = 0
    negative_hits: int = 0
    state_reads: int = 0


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
        negative_ttl: float = 5.0,
        max_keys: int = 100_000,
        threads: int = 4,
        verify: Callable[[str], KeyState | None] = services.verify_key,
        load_state: Callable[[int], KeyState | None] = services.get_key_state,
    ) -> None:
        self._pepper = pepper
        self._prefix = prefix
        self.state_ttl = state_ttl
        self.negative_ttl = negative_ttl
        self._max_keys = max_keys
        self._verify = verify
        self._load_state = load_state
        self._ids: OrderedDict[bytes, int] = OrderedDict()
        self._negative: dict[bytes, float] = {}
        self._states: dict[int, _Entry] = {}
        self._inflight: dict[bytes, asyncio.Future[KeyState | None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="keygate-verify")
        self.stats = CacheStats()

    # --- public ----------------------------------------------------------------------------

    async def authenticate(self, raw: str) -> tuple[KeyState | None, str]:
        """The state of the key ``raw`` names, or ``None``; and why (for X-Debug-Auth).

        The state returned may be revoked or expired: the caller decides what that means.
        """
        digest = crypto.digest(self._pepper, raw)
        key_id = self._ids.get(digest)
        if key_id is None and crypto.parse_key(raw, self._prefix) is None:
            return None, "malformed"  # only keys never verified here need the format check
        if key_id is not None:
            entry = self._states.get(key_id)
            if entry is not None:
                age = time.monotonic() - entry.fetched
                if age < self.state_ttl:
                    self.stats.hits += 1
                    if age >= self.state_ttl / 2 and not entry.refreshing:
                        entry.refreshing = True
                        asyncio.get_running_loop().create_task(self._refresh(key_id))
                    return entry.state, "cached"
            state = await self._read_state(key_id)
            if state is not None:
                return state, "refreshed"
            self._ids.pop(digest, None)
        expires = self._negative.get(digest)
        if expires is not None:
            if expires > time.monotonic():
                self.stats.negative_hits += 1
                return None, "invalid"
            del self._negative[digest]
        self.stats.misses += 1
        return await self._verify_once(digest, raw), "verified"

    def knows(self, raw: str) -> bool:
        """True when ``raw`` verified earlier in this process (no I/O; for the brute-force guard)."""
        return crypto.digest(self._pepper, raw) in self._ids

    def drop(self, key_id: int) -> None:
        """Forget a key's state so the next request re-reads it (its verification stays valid)."""
        self._states.pop(key_id, None)

    def clear(self) -> None:
        self._ids.clear()
        self._negative.clear()
        self._states.clear()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- internals -------------------------------------------------------------------------

    async def _verify_once(self, digest: bytes, raw: str) -> KeyState | None:
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
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
            self._negative[digest] = time.monotonic() + self.negative_ttl
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
        self._states[state.id] = _Entry(state, time.monotonic())

    async def _read_state(self, key_id: int) -> KeyState | None:
        self.stats.state_reads += 1
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(self._executor, _in_thread, self._load_state, key_id)
        if state is None:
            self._states.pop(key_id, None)
        else:
            self._states[key_id] = _Entry(state, time.monotonic())
        return state

    async def _refresh(self, key_id: int) -> None:
        try:
            await self._read_state(key_id)
        except Exception:  # a failed background refresh leaves the entry to expire on its own
            entry = self._states.get(key_id)
            if entry is not None:
                entry.refreshing = False
