"""Circuit breakers shared by every Keygate process through Redis (when ``REDIS_URL`` is set).

A process that opens or closes a deployment's breaker publishes it (channel
``{namespace}:breakers``) and writes it to a hash, so an outage one process sees opens the
breaker in every process within milliseconds (tested ≤ 1 s), and a process that starts or
reconnects adopts the breakers open right now. A half-open probe is claimed with
``SET … NX PX`` so one probe goes out across all processes; the claim is dropped when the probe's
verdict is known (and expires after the probe lease whatever happens).

Failures are still counted per process (a breaker opens on what one process sees), and every
Redis failure degrades to per-process breakers: logged, never raised on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from django.conf import settings

from gateway.breaker import BreakerBoard, State
from gateway.router import Router

log = logging.getLogger(__name__)

_ORIGIN = f"{os.getpid()}-{os.urandom(4).hex()}"


def _names() -> tuple[str, str, str]:
    namespace = settings.KEYGATE_REDIS_NAMESPACE
    return f"{namespace}:breakers", f"{namespace}:breakers:state", f"{namespace}:breakers:probe:"


class BreakerSync:
    """Publishes this process's transitions and applies the others'."""

    def __init__(self, router: Router, client: Any, subscriber: Any) -> None:
        self.router = router
        self.board: BreakerBoard = router.board
        self.client = client
        self.subscriber = subscriber  # no read timeout: a quiet channel is no error
        self.origin = _ORIGIN
        self.channel, self.hash, self.probe_prefix = _names()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self.board.on_transition.append(self._on_transition)
        self.router.claim_probe = self.claim_probe
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.board.on_transition.remove(self._on_transition)
        self.router.claim_probe = None
        self._stopping = True
        if self._listener is not None:
            self._listener.cancel()
            # redis' pubsub can swallow a cancel that lands mid-read; never hang a shutdown on it.
            await asyncio.wait({self._listener}, timeout=2.0)
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await task
        for connection in (self.client, self.subscriber):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await connection.aclose()

    async def claim_probe(self, key: str) -> bool:
        """True when this process may send the one probe of ``key``'s half-open breaker."""
        lease_ms = int(self.board.policy.probe_lease * 1000)
        try:
            return bool(await self.client.set(self.probe_prefix + key, self.origin, nx=True, px=lease_ms))
        except Exception as error:  # Redis down: per-process breakers
            log.warning("could not claim a breaker probe on Redis (%s)", type(error).__name__)
            return True

    def _on_transition(self, key: str, state: State, remaining: float, error: str) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(key, state, remaining, error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, key: str, state: State, remaining: float, error: str) -> None:
        if state is State.HALF_OPEN:
            return  # a local step: the probe claim is what the others see
        message = {"origin": self.origin, "key": key, "state": state.value, "remaining": remaining, "error": error}
        try:
            pipe = self.client.pipeline(transaction=False)
            if state is State.OPEN:
                pipe.hset(self.hash, key, json.dumps({**message, "until": time.time() + remaining}))
            else:
                pipe.hdel(self.hash, key)
            pipe.delete(self.probe_prefix + key)
            pipe.publish(self.channel, json.dumps(message))
            await pipe.execute()
        except Exception as failure:
            log.warning("could not share a breaker transition on Redis (%s)", type(failure).__name__)

    def _apply(self, message: dict[str, Any], remaining: float) -> None:
        if message.get("origin") == self.origin or not isinstance(message.get("key"), str):
            return
        try:
            state = State(message["state"])
        except (KeyError, ValueError):
            return
        self.board.apply_remote(message["key"], state, max(0.0, remaining), str(message.get("error", ""))[:200])

    async def _listen(self) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                async with self.subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    # What opened before this process (re)connected.
                    for raw in (await self.client.hgetall(self.hash)).values():
                        message = json.loads(raw)
                        remaining = float(message.get("until", 0)) - time.time()
                        if remaining > 0:
                            self._apply(message, remaining)
                    delay = 0.5
                    async for raw in pubsub.listen():
                        if raw.get("type") != "message":
                            continue
                        with contextlib.suppress(ValueError, TypeError):
                            message = json.loads(raw["data"])
                            self._apply(message, float(message.get("remaining", 0)))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("breaker subscription lost (%s); retrying in %.1f s", type(error).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def start(router: Router) -> BreakerSync | None:
    """Share ``router``'s breakers through Redis when it is configured (else None)."""
    if not settings.REDIS_URL:
        return None
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    subscriber = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    sync = BreakerSync(router, client, subscriber)
    sync.start()
    return sync
