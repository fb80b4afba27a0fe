"""The gateway's brute-force guard on a real server, beyond ``tests/limits/test_auth_guard_live.py``
(401 ×5 then 429, and an already-verified key keeps working from the same address):

- the guard counts per client address: one address's failures never throttle another's;
- garbage (wrong prefix, bad checksum, SQL, huge headers) never reaches the database or argon2,
  read from the server's own counters (``/metrics``): no cache miss — hence no verification — for
  anything that is not a well-formed key.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from keys import crypto
from tests.support.live import KeygateServer

pytestmark = pytest.mark.live

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
TOKEN = "sec-metrics-token"
GARBAGE = [
    "' OR '1'='1",
    "sk-kg-' OR 1=1--",
    "sk-proj-" + "a" * 48,
    "sk-ant-api03-" + "b" * 95,
    crypto.generate_key("sk-other")[1],
    "x" * 60_000,  # far too long, still under the server's 64 KiB request-head limit (431 past it)
    "sk-kg-" + "A" * 50,  # the right shape, a wrong checksum
]


def _client(server: KeygateServer, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is loopback on Linux)."""
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address), timeout=10)


def _cache_counts(server: KeygateServer) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'keygate_key_cache_total\{result="(\w+)"\} ([\d.e+]+)', text)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> KeygateServer:
    env = {"KEYGATE_AUTH_FAILURES_PER_MINUTE": "5", "KEYGATE_METRICS_TOKEN": TOKEN}
    with KeygateServer(Path(tmp_path_factory.mktemp("guard")), env=env) as running:
        yield running


def test_failures_from_one_address_do_not_throttle_another(server: KeygateServer) -> None:
    first, second = server.make_keys({"name": "a", "model_patterns": "*"}, {"name": "b", "model_patterns": "*"})

    guesses = [crypto.generate_key("sk-kg")[1] for _ in range(7)]  # well-formed, unknown
    with _client(server, "127.0.0.2") as attacker, _client(server, "127.0.0.3") as neighbour:
        garbage = [
            attacker.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": bad}).status_code for bad in GARBAGE
        ]
        statuses = [
            attacker.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": guess}).status_code
            for guess in guesses
        ]
        blocked_new_key = attacker.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": first})
        neighbour_new_key = neighbour.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": second})
        neighbour_garbage = neighbour.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": "nope"})

    assert set(garbage) == {401}  # malformed keys cost nothing and are never counted (issue #10)
    assert statuses == [401] * 5 + [429] * 2
    # A blocked address cannot try keys this process has not verified yet — not even real ones.
    assert blocked_new_key.status_code == 429
    assert neighbour_new_key.status_code == 200
    assert neighbour_garbage.status_code == 401


def test_garbage_never_reaches_the_key_store_or_argon2(server: KeygateServer) -> None:
    before = _cache_counts(server)
    with _client(server, "127.0.0.4") as client:
        for bad in GARBAGE[:4]:  # under the guard's limit: every one is really looked at
            assert client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": bad}).status_code == 401

    after = _cache_counts(server)

    assert after.get("malformed", 0) - before.get("malformed", 0) == 4
    assert after.get("miss", 0) == before.get("miss", 0)  # no lookup, no argon2
