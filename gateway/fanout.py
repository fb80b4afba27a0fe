"""Cross-process change notices through Redis pub/sub (when ``REDIS_URL`` is set).

Any process that changes a key — a dashboard worker, the CLI, the admin — publishes the key's
id after commit; every gateway process subscribes and drops that key's cached state, so a
revocation is refused everywhere within milliseconds. Route and price changes are announced
the same way. Without Redis (or while it is down) the key-state TTL bounds the delay instead
(``KEYGATE_STATE_TTL``, 1 s by default), since every process re-reads state from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

log = logging.getLogger(__name__)


def _channels() -> tuple[str, str]:
    namespace = settings.KEYGATE_REDIS_NAMESPACE
    return f"{namespace}:key_changed", f"{namespace}:routes_changed"


@lru_cache(maxsize=1)
def _publisher() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def publish(channel: str, message: str) -> None:
    """Publish a notice; failures are logged, never raised (the TTL still bounds staleness)."""
    if not settings.REDIS_URL:
        return
    try:
        _publisher().publish(channel, message)
    except redis.RedisError as error:
        log.warning(
            "could not publish %s on Redis (%s); other processes will see it within the state TTL",
            channel,
            type(error).__name__,
        )


def on_key_changed(sender: Any, key_id: int, **kwargs: Any) -> None:
    publish(_channels()[0], str(key_id))


def on_routes_changed(sender: Any, **kwargs: Any) -> None:
    publish(_channels()[1], "1")


async def subscribe(on_key: Callable[[int], None], on_routes: Callable[[], None]) -> None:
    """Listen for notices until cancelled, reconnecting with backoff when Redis goes away."""
    keys_channel, routes_channel = _channels()
    delay = 0.5
    while True:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(keys_channel, routes_channel)
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"].decode()
                    if channel == keys_channel:
                        try:
                            on_key(int(message["data"]))
                        except ValueError:
                            continue
                    else:
                        on_routes()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("Redis subscription lost (%s); retrying in %.1f s", type(error).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        finally:
            await client.aclose()
