"""Live-server fixtures: one fake upstream and one Keygate process, shared by the whole session.

Loaded from ``tests/conftest.py`` (``pytest_plugins``) so ``tests/gateway`` and ``tests/e2e``
share a single server. Nothing is started unless a test asks for ``live``.

``live`` is a Keygate subprocess (``tests.support.live.KeygateServer``) whose environment
points both providers at :class:`~tests.support.upstream.UpstreamServer` on loopback:
``OPENAI_*`` → provider ``openai`` (route ``*``), ``ANTHROPIC_*`` → provider ``anthropic``
(route ``claude-*``). Once it is up, one ``manage.py shell`` adds what the fault tests need
and creates every key the session uses (a subprocess costs about a second, so this is done
once):

======================  ==================================================================
model                   served by
======================  ==================================================================
``mock-stall``,         provider ``flaky`` (OpenAI kind, same upstream) with
``mock-slow-first-byte``  ``first_byte_timeout`` 1.5 s and ``idle_timeout`` 0.4 s
``claude-mock-stall``   provider ``flaky-anthropic`` (same timeouts) → upstream ``mock-stall``
``claude-mock-<fault>`` provider ``anthropic``, ``upstream_model`` = ``mock-<fault>``
``dead-*``              provider ``dead`` (OpenAI kind): a loopback port nobody listens on
``claude-dead``         provider ``dead-anthropic``: the same, Anthropic kind
``badcred-model``       provider ``badcred``: the real upstream, a wrong stored credential
======================  ==================================================================

plus a price for ``gpt-4o``. The server reloads routes every 0.5 s
(``KEYGATE_ROUTES_REFRESH``), accepts request bodies up to 64 KiB and upstream answers up to
8 MiB, so the limits are cheap to exceed.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from keys import crypto
from tests.support.live import ROOT, KeygateServer, free_port
from tests.support.upstream import UpstreamServer
from tests.support.wait import wait_until

UPSTREAM_SECRET = "upstream-secret-" + secrets.token_hex(12)
WRONG_UPSTREAM_SECRET = "wrong-upstream-secret-" + secrets.token_hex(8)
MAX_BODY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
ROUTES_REFRESH = 0.5
FLAKY_FIRST_BYTE_TIMEOUT = 1.5
FLAKY_IDLE_TIMEOUT = 0.4
GPT_4O_PRICE = (Decimal("2.5"), Decimal("10"))  # USD per million input / output tokens
ANTHROPIC_FAULTS = ("error-400", "error-429", "error-500", "error-529", "reset", "slow-stream")

#: name → key_create() arguments (plus ``then``: "expire" or "revoke").
KEY_SPECS: dict[str, dict[str, Any]] = {
    "all": {"model_patterns": ["*"]},
    "gpt-4o": {"model_patterns": ["gpt-4o"]},
    "mixed": {"model_patterns": ["gpt-4o", "claude-sonnet-4-6"]},
    "claude-mock": {"model_patterns": ["claude-mock-*"]},
    "management": {"model_patterns": ["*"], "is_management": True},
    "expired": {"model_patterns": ["*"], "then": "expire"},
    "revoked": {"model_patterns": ["*"], "then": "revoke"},
    "revoke-in-process": {"model_patterns": ["*"]},
    "revoke-by-cli": {"model_patterns": ["*"]},
    "usage": {"model_patterns": ["*"]},
}

_SETUP = """
import json, sys
from datetime import timedelta
from django.utils import timezone
from gateway.models import ModelPrice, Provider, Route
from gateway.routing import encrypt_credential
from keys import services
from keys.models import APIKey

spec = json.loads(sys.stdin.read())
timeouts = {"first_byte_timeout": spec["first_byte"], "idle_timeout": spec["idle"]}
flaky = Provider.objects.create(
    name="flaky", kind="openai", base_url=spec["upstream"] + "/v1", api_key_env="OPENAI_API_KEY", **timeouts
)
for model in ("mock-stall", "mock-slow-first-byte"):
    Route.objects.create(provider=flaky, model_pattern=model, priority=10)
flaky_anthropic = Provider.objects.create(
    name="flaky-anthropic", kind="anthropic", base_url=spec["upstream"], api_key_env="ANTHROPIC_API_KEY", **timeouts
)
Route.objects.create(provider=flaky_anthropic, model_pattern="claude-mock-stall", upstream_model="mock-stall", priority=10)
anthropic = Provider.objects.get(name="anthropic")
for fault in spec["anthropic_faults"]:
    Route.objects.create(provider=anthropic, model_pattern="claude-mock-" + fault, upstream_model="mock-" + fault, priority=10)
dead = Provider.objects.create(name="dead", kind="openai", base_url=spec["dead"] + "/v1", connect_timeout=2)
Route.objects.create(provider=dead, model_pattern="dead-*", priority=10)
dead_anthropic = Provider.objects.create(name="dead-anthropic", kind="anthropic", base_url=spec["dead"], connect_timeout=2)
Route.objects.create(provider=dead_anthropic, model_pattern="claude-dead", priority=10)
badcred = Provider.objects.create(name="badcred", kind="openai", base_url=spec["upstream"] + "/v1")
badcred.api_key_encrypted = encrypt_credential(spec["wrong_secret"])
badcred.save()
Route.objects.create(provider=badcred, model_pattern="badcred-model", priority=10)
ModelPrice.objects.create(model_pattern="gpt-4o", input_per_mtok=spec["price"][0], output_per_mtok=spec["price"][1])

keys = {}
for name, args in spec["keys"].items():
    then = args.pop("then", None)
    key, raw = services.key_create(name=name, **args)
    if then == "expire":
        APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    elif then == "revoke":
        services.key_revoke(key=key)
    keys[name] = raw
print(json.dumps(keys))
"""


@dataclass
class LiveKeygate:
    """The session's Keygate process, its upstream, and the keys made for it."""

    server: KeygateServer
    keys: dict[str, str]
    upstream: UpstreamServer | None = None  # None: a server that calls no upstream (the demo)
    dead_url: str = ""
    _clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def openai(self, key: str = "all", **options: Any) -> openai.OpenAI:
        """An OpenAI SDK client on Keygate with the named key (or a raw key). No retries."""
        options = {"max_retries": 0, "timeout": 10.0, **options}
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=self.keys.get(key, key), **options)
        self._clients.append(client)
        return client

    def anthropic(self, key: str = "all", **options: Any) -> anthropic.Anthropic:
        """An Anthropic SDK client on Keygate with the named key (or a raw key). No retries."""
        options = {"max_retries": 0, "timeout": 10.0, **options}
        client = anthropic.Anthropic(base_url=self.url, api_key=self.keys.get(key, key), **options)
        self._clients.append(client)
        return client

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "all",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A raw HTTP request, for what the SDKs hide (headers, bodies, methods)."""
        sent = {"authorization": f"Bearer {self.keys.get(key, key)}"} if key is not None else {}
        sent.update(headers or {})
        return httpx.request(method, self.url + path, headers=sent, timeout=10.0, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def upstream_request(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The upstream's record of the request Keygate forwarded with ``request_id``."""
        assert self.upstream is not None
        records = self.upstream.wait_for(lambda rs: any(_rid(r) == request_id for r in rs), timeout=timeout)
        return next(r for r in records if _rid(r) == request_id)

    def access_logged(self, *request_ids: str, timeout: float = 5.0) -> str:
        """The server's log once it holds an access-log line for each of ``request_ids``.

        The access log is written by a background thread, after the response: read it only
        through this (or another wait), never right after a request.
        """

        def complete() -> str | None:
            log = self.server.logs()
            access = [line for line in log.splitlines() if "keygate.access" in line]
            missing = [rid for rid in request_ids if not any(f'"{rid}"' in line for line in access)]
            return None if missing else log

        return wait_until(complete, timeout=timeout, what=f"access-log lines for {len(request_ids)} requests")

    def upstream_requests(self, request_id: str) -> list[dict[str, Any]]:
        assert self.upstream is not None
        return [r for r in self.upstream.requests if _rid(r) == request_id]

    def usage(self, *request_ids: str, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
        """The server's UsageRecord rows for ``request_ids``, waiting for the batch writer.

        Read straight from the server's SQLite file (read-only): a ``manage.py shell`` per poll
        would cost about a second each.
        """
        database = self.server.workdir / "keygate.sqlite3"
        marks = ",".join("?" * len(request_ids))
        query = (
            "SELECT request_id, endpoint, model, provider, status_code, input_tokens, output_tokens, "
            "cost_usd, streamed, aborted, error_type, ttfb_ms, key_id "
            f"FROM keys_usagerecord WHERE request_id IN ({marks})"
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
                db.row_factory = sqlite3.Row
                found = {row["request_id"]: dict(row) for row in db.execute(query, request_ids)}
            if set(found) >= set(request_ids):
                return found
            if time.monotonic() > deadline:
                missing = sorted(set(request_ids) - set(found))
                raise AssertionError(f"no usage record for {missing} after {timeout} s")
            time.sleep(0.1)


def shell(server: KeygateServer, code: str, *, stdin: str = "") -> str:
    """Run ``code`` in ``manage.py shell`` against the server's database (a separate process)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _rid(record: dict[str, Any]) -> str | None:
    return record["headers"].get("x-request-id")


def unknown_key() -> str:
    """A well-formed Keygate key (checksum and all) that no server ever issued."""
    return crypto.generate_key("sk-kg")[1]


def new_request_id() -> str:
    """A request id a test sends, to find its request upstream and in the usage table."""
    return f"test-{uuid.uuid4().hex}"


def start_server(workdir: Path, template: Path, env: dict[str, str] | None = None, **options: Any) -> KeygateServer:
    """A started KeygateServer whose database begins as a copy of ``template`` (migrated)."""
    server = KeygateServer(workdir, env=env, **options)
    shutil.copyfile(template, workdir / "keygate.sqlite3")
    return server.start()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite database to copy: migrating from scratch costs seconds per server."""
    workdir = tmp_path_factory.mktemp("template")
    KeygateServer(workdir).manage("migrate", "--noinput", "-v0")
    return workdir / "keygate.sqlite3"


@pytest.fixture(scope="session")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=UPSTREAM_SECRET) as server:
        yield server


@pytest.fixture(scope="session")
def live(
    upstream: UpstreamServer, migrated_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveKeygate]:
    env = {
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "OPENAI_API_KEY": UPSTREAM_SECRET,
        "ANTHROPIC_BASE_URL": upstream.url,
        "ANTHROPIC_API_KEY": UPSTREAM_SECRET,
        "KEYGATE_ROUTES_REFRESH": str(ROUTES_REFRESH),
        "KEYGATE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "KEYGATE_MAX_RESPONSE_BYTES": str(MAX_RESPONSE_BYTES),
    }
    server = start_server(tmp_path_factory.mktemp("keygate"), migrated_database, env)
    try:
        dead_url = f"http://127.0.0.1:{free_port()}"
        spec = {
            "upstream": upstream.url,
            "dead": dead_url,
            "wrong_secret": WRONG_UPSTREAM_SECRET,
            "first_byte": FLAKY_FIRST_BYTE_TIMEOUT,
            "idle": FLAKY_IDLE_TIMEOUT,
            "anthropic_faults": ANTHROPIC_FAULTS,
            "price": [str(price) for price in GPT_4O_PRICE],
            "keys": KEY_SPECS,
        }
        keys = json.loads(shell(server, _SETUP, stdin=json.dumps(spec)).strip().splitlines()[-1])
        live = LiveKeygate(server=server, upstream=upstream, keys=keys, dead_url=dead_url)
        # The routes made above reach the running server with its next reload.
        wait_until(lambda: _routes_loaded(live), timeout=10 * ROUTES_REFRESH + 5)
        yield live
        for client in live._clients:
            client.close()
    finally:
        server.stop()


def _routes_loaded(live: LiveKeygate) -> bool:
    listed = live.request("GET", "/v1/models").json()["data"]
    return {"badcred-model", "claude-dead", "mock-stall"} <= {model["id"] for model in listed}


@pytest.fixture(scope="session")
def oai(live: LiveKeygate) -> openai.OpenAI:
    """The OpenAI SDK on Keygate with a key for every model."""
    return live.openai("all")


@pytest.fixture(scope="session")
def claude(live: LiveKeygate) -> anthropic.Anthropic:
    """The Anthropic SDK on Keygate with a key for every model."""
    return live.anthropic("all")
