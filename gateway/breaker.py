"""Circuit breakers, one per deployment (docs/architecture.md, "Routing"; issue #12).

A breaker is **closed** (traffic flows) until ``failures`` failures fall within ``window``
seconds; it then **opens**: the router sends the deployment nothing for ``cooldown`` seconds.
After the cooldown the next request that picks it takes the single **half-open** probe slot
(every other request still skips it); the probe's success closes the breaker, its failure opens
it for another cooldown. A probe that ends without a verdict (the client left, the request was
refused before reaching the upstream) hands the slot back, and a probe slot is reclaimed after
``probe_lease`` seconds whatever happened, so a breaker can never stay half-open for good.

What counts as a failure is the router's decision (:mod:`gateway.proxy`): connect errors,
timeouts before the first byte, the route's retryable statuses, 401/403 (Keygate's credential
refused), redirects, and a stream that breaks mid-way.

Everything here runs on one event loop and is synchronous and I/O-free, so a breaker costs a
dict lookup on the hot path. Sharing between processes (:mod:`gateway.breaker_sync`) is layered
on top through :attr:`BreakerBoard.on_transition` and :meth:`BreakerBoard.apply_remote`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.dispatch import Signal

log = logging.getLogger("keygate.gateway")


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """``failures`` within ``window`` seconds open a breaker for ``cooldown`` seconds."""

    failures: int = 5
    window: float = 30.0
    cooldown: float = 30.0
    probe_lease: float = 120.0


@dataclass(slots=True)
class Breaker:
    """One deployment's breaker. ``recent`` holds (time, failed) of the last window's attempts,
    for the admin's error rate."""

    key: str
    state: State = State.CLOSED
    failures: deque[float] = field(default_factory=deque)
    opened_at: float = 0.0
    cooldown_until: float = 0.0
    probing_since: float | None = None
    last_error: str = ""
    last_error_at: float | None = None  # wall-clock time, for display
    recent: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=1000))


#: ``on_transition(key, state, cooldown_remaining, last_error)``: called after every transition
#: this process makes itself (not after one applied from another process).
Transition = Callable[[str, State, float, str], None]

#: ``on_outage(key, down, last_error)``: an outage begins (closed → open) or ends (a probe closed
#: the breaker). Re-opening after a failed probe is the same outage, so it is not announced again.
Outage = Callable[[str, bool, str], None]

#: Sent (from a worker thread, never the event loop) when a deployment's outage begins or ends:
#: ``deployment`` (the breaker key, ``provider:model``), ``down`` and ``error``. notify/ turns it
#: into an operator notice; keeping the gateway unaware of who listens.
breaker_changed = Signal()


class BreakerBoard:
    """Every deployment's breaker in this process. ``clock`` is monotonic seconds (a fake one in
    tests)."""

    def __init__(self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self.breakers: dict[str, Breaker] = {}
        self.on_transition: list[Transition] = []
        self.on_outage: list[Outage] = []

    def get(self, key: str) -> Breaker:
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = Breaker(key)
        return breaker

    def state(self, key: str) -> State:
        """The state as a router would see it now (an open breaker past its cooldown is half-open)."""
        breaker = self.breakers.get(key)
        if breaker is None:
            return State.CLOSED
        if breaker.state is State.OPEN and self.clock() >= breaker.cooldown_until:
            return State.HALF_OPEN
        return breaker.state

    def available(self, key: str) -> bool:
        """Whether :meth:`acquire` would admit a request now (no side effect)."""
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state is State.CLOSED:
            return True
        now = self.clock()
        if breaker.state is State.OPEN:
            return now >= breaker.cooldown_until
        return breaker.probing_since is None or now - breaker.probing_since >= self.policy.probe_lease

    def acquire(self, key: str) -> bool:
        """Admit one request to the deployment: always when closed; as *the* probe when the
        cooldown is over and no probe is out; else refuse."""
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state is State.CLOSED:
            return True
        if not self.available(key):
            return False
        if breaker.state is State.OPEN:
            self._move(breaker, State.HALF_OPEN)
        breaker.probing_since = self.clock()
        return True

    def release(self, key: str) -> None:
        """The admitted request ended without a verdict: free the probe slot."""
        breaker = self.breakers.get(key)
        if breaker is not None:
            breaker.probing_since = None

    def success(self, key: str) -> None:
        breaker = self.breakers.get(key)
        if breaker is None:
            return
        breaker.recent.append((self.clock(), False))
        breaker.probing_since = None
        if breaker.state is not State.CLOSED:
            breaker.failures.clear()
            self._move(breaker, State.CLOSED)

    def failure(self, key: str, error: str) -> None:
        breaker = self.get(key)
        now = self.clock()
        breaker.recent.append((now, True))
        breaker.last_error, breaker.last_error_at = error, time.time()
        breaker.probing_since = None
        if breaker.state is State.HALF_OPEN:
            self._open(breaker, now)
            return
        if breaker.state is State.OPEN:
            return  # tried anyway (no deployment of the route was available): no news
        failures = breaker.failures
        failures.append(now)
        while failures and failures[0] <= now - self.policy.window:
            failures.popleft()
        if len(failures) >= self.policy.failures:
            self._open(breaker, now)

    def error_rate(self, key: str) -> tuple[int, int]:
        """(failed, attempts) within the last window."""
        breaker = self.breakers.get(key)
        if breaker is None:
            return 0, 0
        since = self.clock() - self.policy.window
        # tuple() copies in one step: the admin reads this from another thread than the loop's.
        recent = [failed for at, failed in tuple(breaker.recent) if at > since]
        return sum(recent), len(recent)

    def cooldown_remaining(self, key: str) -> float:
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state is not State.OPEN:
            return 0.0
        return max(0.0, breaker.cooldown_until - self.clock())

    def apply_remote(self, key: str, state: State, cooldown_remaining: float, error: str = "") -> None:
        """A transition another process made (through Redis): adopt it without announcing it."""
        breaker = self.get(key)
        now = self.clock()
        if error:
            breaker.last_error, breaker.last_error_at = error, time.time()
        if state is State.OPEN:
            breaker.state, breaker.opened_at = State.OPEN, now
            breaker.cooldown_until = now + cooldown_remaining
            breaker.probing_since = None
        elif state is State.CLOSED:
            breaker.state = State.CLOSED
            breaker.failures.clear()
            breaker.probing_since = None
        # HALF_OPEN elsewhere: this process keeps its own view (open until its cooldown ends).

    # --- transitions ---------------------------------------------------------------------------

    def _open(self, breaker: Breaker, now: float) -> None:
        breaker.opened_at, breaker.cooldown_until = now, now + self.policy.cooldown
        breaker.failures.clear()
        self._move(breaker, State.OPEN)

    def _move(self, breaker: Breaker, state: State) -> None:
        previous, breaker.state = breaker.state, state
        remaining = max(0.0, breaker.cooldown_until - self.clock()) if state is State.OPEN else 0.0
        for listener in self.on_transition:
            listener(breaker.key, state, remaining, breaker.last_error)
        if (previous is State.CLOSED) != (state is State.CLOSED):  # closed → open, or half-open → closed
            for announce in self.on_outage:
                announce(breaker.key, state is not State.CLOSED, breaker.last_error)


def announce_outages(board: BreakerBoard, submit: Callable[..., Any] | None = None) -> None:
    """Send :data:`breaker_changed` for ``board``'s outages, off the event loop (one worker
    thread: receivers write to the database). ``submit`` runs a callable; tests pass one that
    runs it at once."""
    if submit is None:
        submit = _submit_news

    def announce(key: str, down: bool, error: str) -> None:
        submit(_send_news, key, down, error)

    board.on_outage.append(announce)


@functools.cache
def _news_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="keygate-breaker-news")


def _submit_news(fn: Callable[..., None], *args: Any) -> None:
    _news_thread().submit(_with_fresh_connection, fn, *args)


def _with_fresh_connection(fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn`` on a database connection of its own, closed afterwards. Outages are rare, so
    the thread keeps no connection open between them (on PostgreSQL an idle one held a server
    slot for good, and the test database could not be dropped)."""
    from django.db import connection

    try:
        fn(*args)
    finally:
        connection.close()


def _send_news(key: str, down: bool, error: str) -> None:
    for _receiver, outcome in breaker_changed.send_robust(sender=BreakerBoard, deployment=key, down=down, error=error):
        if isinstance(outcome, Exception):
            log.error("announcing the breaker of %s failed: %s", key, outcome)


@functools.cache
def process_board() -> BreakerBoard:
    """This process's breakers, configured by ``KEYGATE_BREAKER_*`` and counted in /metrics."""
    from django.conf import settings

    from gateway import metrics

    policy = BreakerPolicy(
        failures=settings.KEYGATE_BREAKER_FAILURES,
        window=settings.KEYGATE_BREAKER_WINDOW,
        cooldown=settings.KEYGATE_BREAKER_COOLDOWN,
    )
    board = BreakerBoard(policy)

    def count(key: str, state: State, remaining: float, error: str) -> None:
        metrics.child(metrics.BREAKER_TRANSITIONS, key, state.value).inc()

    board.on_transition.append(count)
    announce_outages(board)
    return board
