"""Wiring the gateway's caches to changes: keys (drop the key's state) and routing (reload)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from django.db.models.signals import post_delete, post_save

from gateway.models import ModelPrice, Provider, Route
from keys.signals import key_changed

if TYPE_CHECKING:
    from gateway.asgi import GatewayApp


def connect(app: GatewayApp) -> None:
    """Connect ``app``'s caches to change signals (changes made in this process are immediate)."""
    loop = asyncio.get_running_loop()

    def on_key_changed(sender: Any, key_id: int, **kwargs: Any) -> None:
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            app.cache.drop(key_id)
        else:
            loop.call_soon_threadsafe(app.cache.drop, key_id)

    def on_routing_changed(sender: Any, **kwargs: Any) -> None:
        app.routes_changed()

    key_changed.connect(on_key_changed, weak=False, dispatch_uid=f"keygate-cache-{id(app)}")
    for model in (Provider, Route, ModelPrice):
        post_save.connect(
            on_routing_changed, sender=model, weak=False, dispatch_uid=f"keygate-routes-{id(app)}-{model.__name__}"
        )
        post_delete.connect(
            on_routing_changed, sender=model, weak=False, dispatch_uid=f"keygate-routes-del-{id(app)}-{model.__name__}"
        )
