"""Several Keygate processes sharing PostgreSQL and Redis (scripts/services.sh starts both).

URLs come from KEYGATE_TEST_PG_URL / KEYGATE_TEST_REDIS_URL, defaulting to what
`scripts/services.sh` serves. Without them the tests skip — except in CI (CI=true), where a
missing service is a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.live import KeygateServer, free_port
from tests.support.upstream import UpstreamServer

PG_URL = os.environ.get("KEYGATE_TEST_PG_URL", "postgres://keygate:keygate@127.0.0.1:54329/keygate")
REDIS_URL = os.environ.get("KEYGATE_TEST_REDIS_URL", "redis://127.0.0.1:63799/0")
UPSTREAM_SECRET = "upstream-secret-for-multi-tests"


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _services() -> None:
    missing = [url for url in (PG_URL, REDIS_URL) if not _reachable(url)]
    if missing:
        message = f"PostgreSQL/Redis not reachable at {', '.join(missing)} (run scripts/services.sh start)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module; dropped afterwards."""
    import psycopg

    name = f"keygate_multi_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(PG_URL)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=UPSTREAM_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def shared_env(pg_database: str, upstream: UpstreamServer) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_database,
        "REDIS_URL": REDIS_URL,
        "KEYGATE_REDIS_NAMESPACE": f"kgtest{secrets.token_hex(4)}",
        "OPENAI_BASE_URL": f"{upstream.url}/v1",
        "OPENAI_API_KEY": UPSTREAM_SECRET,
        "KEYGATE_ACCESS_LOG": "WARNING",
    }


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory, shared_env: dict[str, str]) -> Iterator[list[KeygateServer]]:
    """Two Keygate processes with two workers each, sharing PostgreSQL and Redis."""
    servers = [KeygateServer(tmp_path_factory.mktemp(f"server{i}"), env=shared_env, workers=2) for i in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis of this test's own (so the test may kill it)."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if _reachable(url):
            break
        import time

        time.sleep(0.05)
    yield url, process
    process.kill()
    process.wait(timeout=5)
