"""config.asgi: the process entry point that mounts the gateway at /v1/."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

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


@pytest.fixture
def start_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], tuple[list[str], dict[str, Any]]]]:
    """Runs config.asgi's lifespan (start-up, then shutdown) with the gateway's own start-up and
    shutdown left out; returns the message types it sent and what the collector looked like when
    start-up completed. The collector's state is put back."""
    import config.asgi

    async def nothing() -> None:
        return None

    monkeypatch.setattr(config.asgi.gateway_application, "startup", nothing)
    monkeypatch.setattr(config.asgi.gateway_application, "shutdown", nothing)
    thresholds = gc.get_threshold()

    def run() -> tuple[list[str], dict[str, Any]]:
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent: list[str] = []
        during_start_up: dict[str, Any] = {}

        async def receive() -> dict:
            return next(messages)

        async def send(message: dict) -> None:
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                during_start_up.update(frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())

        asyncio.run(config.asgi.application({"type": "lifespan"}, receive, send))
        return sent, during_start_up

    gc.unfreeze()
    try:
        yield run
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_start_up_freezes_the_heap_it_built_so_the_collector_never_walks_it_again(
    start_up: Callable[[], tuple[list[str], dict[str, Any]]],
) -> None:
    sent, during_start_up = start_up()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert during_start_up["frozen"] > 1000  # Django's apps and this test run's modules, at least


def test_start_up_lets_the_young_generation_grow_before_the_collector_runs(
    start_up: Callable[[], tuple[list[str], dict[str, Any]]],
) -> None:
    import config.asgi

    gc.set_threshold(700, 10, 10)  # Python's default
    _, during_start_up = start_up()
    # Requests in flight keep thousands of young objects alive; at 700 the collector walked them
    # every ~14 requests. The older generations keep their own thresholds.
    assert during_start_up["thresholds"] == (config.asgi.YOUNG_COLLECTION_THRESHOLD, 10, 10)
    assert config.asgi.YOUNG_COLLECTION_THRESHOLD >= 10_000
