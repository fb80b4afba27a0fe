"""Choosing a route's deployment for each attempt of a request (docs/architecture.md, "Routing").

Within a route, the deployments of the lowest priority whose breakers admit traffic share it by
weight; the next priority is tried only when none of those can serve. A request never tries
the same deployment twice. When *no* deployment of the route is available for a request's
attempt (every breaker open), the route is in **panic** (as Envoy calls it): the
deployments are tried anyway, in priority and weight order, so a route with one deployment
behaves as it would without breakers, and recovery needs no probe.

The weighted choice draws from ``random.Random`` (seedable: ``KEYGATE_ROUTER_SEED``, or the
``rng`` argument in tests), so a test can make the split deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection

from gateway.breaker import BreakerBoard, State
from gateway.routing import Deployment, RouteEntry


def weighted_choice(candidates: list[Deployment], rng: random.Random) -> Deployment:
    """One of ``candidates``, each with probability weight / total weight."""
    total = sum(d.weight for d in candidates)
    point = rng.random() * total
    for deployment in candidates:
        point -= deployment.weight
        if point < 0:
            return deployment
    return candidates[-1]


class Router:
    """Picks deployments through one :class:`BreakerBoard` (one per process).

    ``claim_probe``, when set (Redis-shared breakers), is asked before this process takes a
    half-open probe slot, so one probe goes out across every process.
    """

    def __init__(self, board: BreakerBoard, rng: random.Random | None = None) -> None:
        self.board = board
        self.rng = rng or random.Random()
        self.claim_probe: Callable[[str], Awaitable[bool]] | None = None

    async def next(
        self, route: RouteEntry, tried: Collection[str], eligible: Collection[str] | None = None
    ) -> Deployment | None:
        """The deployment for the next attempt (its breaker admission taken), or None when no
        untried deployment may be used. ``eligible``: keys of the deployments that can serve
        this request at all (the protocol allows it); None for all of them."""
        board = self.board
        if len(route.deployments) == 1:
            return self.only(route, tried, eligible)
        remaining = [d for d in route.deployments if d.key not in tried and (eligible is None or d.key in eligible)]
        if not remaining:
            return None
        # Fast path: one priority level with every breaker closed (the common case).
        for priority in sorted({d.priority for d in remaining}):
            level = [d for d in remaining if d.priority == priority and d.weight > 0 and board.available(d.key)]
            while level:
                choice = level[0] if len(level) == 1 else weighted_choice(level, self.rng)
                if await self._admit(choice):
                    return choice
                level.remove(choice)
        if any(board.available(d.key) for d in route.deployments if d.key in tried):
            return None  # a deployment tried already is healthy: this is no outage of the route
        # Panic: nothing of this route is available; try its deployments anyway, in order.
        by_priority = sorted(remaining, key=lambda d: d.priority)
        first = by_priority[0].priority
        level = [d for d in by_priority if d.priority == first and d.weight > 0] or by_priority[:1]
        return weighted_choice(level, self.rng)

    def only(
        self, route: RouteEntry, tried: Collection[str], eligible: Collection[str] | None = None
    ) -> Deployment | None:
        """:meth:`next` for a route of one deployment (the common case): no choice to make, and
        no await on the hot path."""
        only = route.deployments[0]
        if only.key in tried or (eligible is not None and only.key not in eligible):
            return None
        self.board.acquire(only.key)  # takes the probe slot when half-open; tried anyway when open
        return only

    async def _admit(self, deployment: Deployment) -> bool:
        board = self.board
        if self.claim_probe is not None and board.state(deployment.key) is State.HALF_OPEN:
            breaker = board.get(deployment.key)
            if breaker.probing_since is None and not await self.claim_probe(deployment.key):
                return False
        return board.acquire(deployment.key)
