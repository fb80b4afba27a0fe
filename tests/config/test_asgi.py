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


def test_start_up_lets_the_young_generation_grow_before_the_collector_runs(
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

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        return None

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default
    try:
        asyncio.run(config.asgi.application({"type": "lifespan"}, receive, send))
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    # Requests in flight keep thousands of young objects alive; at 700 the collector walked them
    # every ~14 requests. The older generations keep their own thresholds.
    assert after == (config.asgi.YOUNG_COLLECTION_THRESHOLD, 10, 10)
    assert config.asgi.YOUNG_COLLECTION_THRESHOLD >= 10_000
