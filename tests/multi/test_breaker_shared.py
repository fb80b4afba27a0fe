"""Circuit breakers shared through Redis (issue #12): an outage one Keygate process sees opens the
breaker in another within 1 s, and closing is shared the same way.

Two Keygate processes (one worker each, so every request's process is known) share PostgreSQL,
Redis and one KEYGATE_CONFIG file. Only the first opens breakers on what it sees (the second
needs 1,000 failures), so anything the second does differently came through Redis.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.multi.conftest import REDIS_URL
from tests.support.live import KeygateServer
from tests.support.upstream import UpstreamServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.multi, pytest.mark.live]

SECRET = "upstream-secret-" + secrets.token_hex(8)
FAILURES = 2

CONFIG = """\
providers:
  - {{name: primary, kind: openai, base_url: "{a}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
  - {{name: backup, kind: openai, base_url: "{b}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
routes:
  - model: shared
    deployments:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: backup, model: gpt-4o, priority: 1}}
"""


@pytest.fixture(scope="module")
def primary() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def backup() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, primary: UpstreamServer, backup: UpstreamServer
) -> Iterator[list[KeygateServer]]:
    config: Path = tmp_path_factory.mktemp("breakers") / "keygate.yaml"
    config.write_text(CONFIG.format(a=primary.url, b=backup.url))
    shared = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": REDIS_URL,
        "KEYGATE_REDIS_NAMESPACE": f"kgtest{secrets.token_hex(4)}",
        "KEYGATE_CONFIG": str(config),
        "KEYGATE_UPSTREAM_GOOD": SECRET,
        "KEYGATE_BREAKER_COOLDOWN": "120",
        "KEYGATE_ACCESS_LOG": "WARNING",
    }
    started = [
        KeygateServer(tmp_path_factory.mktemp("s0"), env={**shared, "KEYGATE_BREAKER_FAILURES": str(FAILURES)}),
        KeygateServer(tmp_path_factory.mktemp("s1"), env={**shared, "KEYGATE_BREAKER_FAILURES": "1000"}),
    ]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


def _chat(server: KeygateServer, key: str) -> httpx.Response:
    body = {"model": "shared", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})


def test_a_breaker_opened_by_one_process_is_open_in_another_within_a_second(
    servers: list[KeygateServer], primary: UpstreamServer
) -> None:
    first, second = servers
    (key,) = first.make_keys({"name": "breakers", "model_patterns": ["*"]})
    assert _chat(second, key).headers["x-keygate-provider"] == "primary"  # healthy, and the key is warm

    primary.fault = "mock-error-503"
    try:
        for _ in range(FAILURES):
            assert _chat(first, key).headers["x-keygate-attempts"] == "2"
        opened = time.monotonic()

        # The second process has seen at most the failures of this polling; it needs 1,000 to
        # open on its own, so an answer straight from the backup means the news came via Redis.
        answer = wait_until(
            lambda: (r := _chat(second, key)).headers["x-keygate-attempts"] == "1" and r,
            timeout=1.0,
            interval=0.01,
            what="the second process skipping the open deployment",
        )
        propagated = time.monotonic() - opened
        assert answer.headers["x-keygate-provider"] == "backup"
        seen = len(primary.requests)
        for _ in range(5):
            assert _chat(second, key).headers["x-keygate-provider"] == "backup"
        assert len(primary.requests) == seen
        print(f"breaker propagation: {propagated * 1000:.1f} ms")
    finally:
        primary.fault = None
