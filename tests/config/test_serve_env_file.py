"""`python -m config.serve` reads the same env file as the settings: KEYGATE_ENV_FILE, else .env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def test_the_server_reads_its_host_and_port_from_the_env_file_the_settings_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from config import serve

    env_file = tmp_path / "keygate.env"
    env_file.write_text("PORT=18765\n")
    monkeypatch.setenv("KEYGATE_ENV_FILE", str(env_file))
    monkeypatch.delenv("PORT", raising=False)
    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    try:
        serve.main()
    finally:
        os.environ.pop("PORT", None)
    assert started["app"] == "config.asgi:application"
    assert started["port"] == 18765
