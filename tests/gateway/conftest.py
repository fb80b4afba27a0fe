"""The gateway in process: the real ``GatewayApp`` (and ``config.asgi.application``) driven through
``httpx.ASGITransport`` on one event loop per test, against the routes in the test database.

``gateway`` is the harness: ``gateway.request("POST", "/v1/chat/completions", json=…)`` returns an
``httpx.Response``; ``gateway.key(...)`` makes a key; ``gateway.access_lines()`` reads the access
log; ``gateway.usage_rows()`` the usage records queued (the writer is not started: nothing races).
Upstreams of kind ``openai``/``anthropic`` are real loopback servers from the tests that need them.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.models import Provider, ProviderKind, Route
from gateway.providers import demo
from keys import services


class InProcessGateway:
    def __init__(self, runner: asyncio.Runner) -> None:
        from gateway.asgi import GatewayApp
        from gateway.logfmt import AccessLog

        self.runner = runner
        self.app = GatewayApp()
        self.log = io.StringIO()
        self.app.access = AccessLog(stream=self.log)
        self.keys: dict[str, str] = {}
        runner.run(self.app.forwarder.start())
        self.reload()

    def reload(self) -> None:
        from gateway.routing import load_table

        self.app.table = load_table()
        self.app.table.discovered = self.app.discovered

    def key(self, name: str = "all", model_patterns: str | list[str] = "*", **options: Any) -> str:
        if name not in self.keys:
            _, raw = services.key_create(name=name, model_patterns=model_patterns, **options)
            self.keys[name] = raw
        return self.keys[name]

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "all",
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        anthropic: bool = False,
        app: Any = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None and not any(h.lower() in ("authorization", "x-api-key") for h in sent):
            raw = self.keys.get(key) or self.key(key)
            sent["authorization"] = f"Bearer {raw}"
        if anthropic:
            sent.setdefault("anthropic-version", "2023-06-01")
        if json is not None:
            content = orjson.dumps(json)
            sent.setdefault("content-type", "application/json")
        return self.runner.run(self._request(method, path, content, sent, app or self.app))

    async def _request(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str], app: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://keygate.test") as client:
            response = await client.request(method, path, content=content, headers=headers)
            await response.aread()
            return response

    def access_lines(self) -> list[dict[str, Any]]:
        self.app.access.flush()
        return [orjson.loads(line) for line in self.log.getvalue().splitlines() if line]

    def usage_rows(self) -> list[dict[str, Any]]:
        from gateway.usage import _NAMES

        return [dict(zip(_NAMES, row, strict=True)) for row in self.app.usage._queue]

    def close(self) -> None:
        self.runner.run(self.app.forwarder.close())
        self.app.cache.close()


@pytest.fixture
def demo_provider(transactional_db: None) -> Provider:
    provider = Provider.objects.create(name="demo", kind=ProviderKind.DEMO, base_url="")
    Route.objects.create(provider=provider, model_pattern="*", priority=10000)
    return provider


@pytest.fixture
def gateway(
    transactional_db: None, demo_provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InProcessGateway]:
    monkeypatch.setattr(demo, "STREAM_DELAY_SECONDS", 0)
    with asyncio.Runner() as runner:
        harness = InProcessGateway(runner)
        try:
            yield harness
        finally:
            harness.close()
