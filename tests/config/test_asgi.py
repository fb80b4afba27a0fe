"""config.asgi: the process entry point that mounts the gateway at /v1/."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_a_gateway_that_fails_to_import_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import config.asgi

    monkeypatch.setitem(sys.modules, "gateway.asgi", None)  # the next import of it raises ImportError
    try:
        with pytest.raises(ImportError):
            importlib.reload(config.asgi)
    finally:
        monkeypatch.undo()
        importlib.reload(config.asgi)


def test_start_up_freezes_the_heap_it_built_so_the_collector_never_walks_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import gc

    import config.asgi

    async def nothing() -> None:
        return None

    monkeypatch.setattr(config.asgi.gateway_application, "startup", nothing)
    monkeypatch.setattr(config.asgi.gateway_application, "shutdown", nothing)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []
    frozen_during_start_up: list[int] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            frozen_during_start_up.append(gc.get_freeze_count())

    gc.unfreeze()
    try:
        asyncio.run(config.asgi.application({"type": "lifespan"}, receive, send))
    finally:
        gc.unfreeze()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert frozen_during_start_up[0] > 1000  # Django's apps and this test run's modules, at least
