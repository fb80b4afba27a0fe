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
