"""Keys verified in this process, for synchronous callers (the management API).

The gateway's :class:`gateway.cache.KeyCache` lives on the event loop; this is its sync twin for
code that runs in request threads, with the same cost rules (SECURITY.md):

- ``HMAC-SHA256(pepper, raw key) → key id`` for keys that verified (memory only, bounded LRU),
  so a key costs argon2 once per process; its state is read from the database on every call
  (one indexed query), so a revocation is seen at once by every process;
- ``digest → "no"`` for keys that failed, for ``negative_ttl`` seconds;
- a malformed key costs nothing and is never counted; a verification about to start is reserved
  with the caller's :class:`~keys.costly.AttemptGuard` before any lookup (a key refused from
  memory, or joining a verification under way, is free and not counted);
- concurrent first uses of one key share one verification (single-flight across threads), and
  argon2 runs in the process's limiter (inside :func:`keys.services.verify_key`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from keys import costly, crypto, services
from keys.services import KeyState


@dataclass(slots=True, eq=False)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    state: KeyState | None = None
    error: BaseException | None = None


class VerifiedKeys:
    """Thread-safe verified-key cache; :meth:`authenticate` is the one entry point."""

    def __init__(
        self,
        *,
        pepper: bytes,
        prefix: str,
        negative_ttl: float = 5.0,
        max_keys: int = 10_000,
        verify: Callable[[str], KeyState | None] = services.verify_key,
        load_state: Callable[[int], KeyState | None] = services.get_key_state,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pepper = pepper
        self._prefix = prefix
        self.negative_ttl = negative_ttl
        self._max_keys = max_keys
        self._verify = verify
        self._load_state = load_state
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: OrderedDict[bytes, int] = OrderedDict()
        self._negative: dict[bytes, float] = {}
        self._inflight: dict[bytes, _Flight] = {}
        self.verifications = 0

    def authenticate(
        self, raw: str, address: str | None = None, guard: costly.AttemptGuard | None = None
    ) -> tuple[KeyState | None, str]:
        """The current state of the key ``raw`` names, or ``None``; and how it was decided.

        May raise :class:`~keys.costly.AttemptsExceeded` (refused before any lookup) or
        :class:`~keys.costly.Argon2Busy`. The state may be revoked or expired.
        """
        digest = crypto.digest(self._pepper, raw)
        with self._lock:
            key_id = self._ids.get(digest)
        if key_id is not None:
            state = self._load_state(key_id)
            if state is not None:
                return state, "cached"
            with self._lock:
                self._ids.pop(digest, None)  # the key is gone: forget that it ever verified
        parsed = crypto.parse_key(raw, self._prefix)
        if parsed is None:
            return None, "malformed"
        with self._lock:
            expires = self._negative.get(digest)
            if expires is not None and expires > self._clock():
                return None, "invalid"
            self._negative.pop(digest, None)
            flight = self._inflight.get(digest)
            leader = flight is None
            if leader:
                flight = self._inflight[digest] = _Flight()
        if not leader:  # joins a verification under way: costs nothing more, is not counted
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.state, "verified"
        try:
            if guard is not None:
                guard.reserve(address, parsed.public_id)
        except BaseException as error:
            self._finish(digest, flight, error=error)
            raise
        try:
            state = self._verify(raw)
        except BaseException as error:
            if guard is not None:
                guard.release(address, parsed.public_id)
            self._finish(digest, flight, error=error)
            raise
        self.verifications += 1
        if state is not None and guard is not None:
            guard.release(address, parsed.public_id)
        self._finish(digest, flight, state=state)
        return state, "verified"

    def knows(self, raw: str) -> bool:
        with self._lock:
            return crypto.digest(self._pepper, raw) in self._ids

    def _finish(
        self, digest: bytes, flight: _Flight, *, state: KeyState | None = None, error: BaseException | None = None
    ) -> None:
        flight.state, flight.error = state, error
        with self._lock:
            self._inflight.pop(digest, None)
            if error is None:
                self._settle(digest, state)
        flight.done.set()

    def _settle(self, digest: bytes, state: KeyState | None) -> None:
        if state is None:
            self._negative[digest] = self._clock() + self.negative_ttl
            if len(self._negative) > self._max_keys:
                self._negative.clear()
            return
        self._ids[digest] = state.id
        self._ids.move_to_end(digest)
        while len(self._ids) > self._max_keys:
            self._ids.popitem(last=False)
