"""Revocation reaches the proxy: at once in the process that revoked, within 1 s from another."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from keys import crypto
from tests.conftest_live import LiveKeygate

pytestmark = pytest.mark.live

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
CROSS_PROCESS_BOUND = 1.5  # the target is 1 s (DESIGN §3); the rest is room for a loaded CI machine


def _public_id(key: str) -> str:
    parsed = crypto.parse_key(key, "sk-kg")
    assert parsed is not None
    return parsed.public_id


def _revoked_at(live: LiveKeygate, public_id: str) -> datetime:
    database = live.server.workdir / "keygate.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        (value,) = db.execute("SELECT revoked_at FROM keys_apikey WHERE public_id = ?", (public_id,)).fetchone()
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def test_a_key_revoked_through_the_servers_api_is_refused_on_the_next_request(live: LiveKeygate) -> None:
    key = live.keys["revoke-in-process"]
    assert live.post("/v1/chat/completions", key=key, json=CHAT).status_code == 200  # cached as valid

    revoked = live.post(f"/api/v1/keys/{_public_id(key)}/revoke/", key="management")
    after = live.post("/v1/chat/completions", key=key, json=CHAT, headers={"x-debug-auth": "true"})

    assert revoked.status_code == 200, revoked.text
    assert after.status_code == 401
    assert after.headers["x-keygate-auth-status"] == "revoked"


def test_a_key_revoked_by_another_process_is_refused_within_a_second(live: LiveKeygate) -> None:
    key = live.keys["revoke-by-cli"]
    statuses: list[tuple[float, int]] = []
    stop = threading.Event()

    def keep_calling() -> None:
        with httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {key}"}, timeout=5) as client:
            while not stop.is_set():
                status = client.post("/v1/chat/completions", json=CHAT).status_code
                statuses.append((time.time(), status))  # when the answer arrived
                if status == 401:
                    return
                time.sleep(0.02)

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    try:
        deadline = time.monotonic() + 5
        while len(statuses) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        result = live.server.manage("keys", "revoke", _public_id(key))  # a separate process
        caller.join(timeout=CROSS_PROCESS_BOUND + 5)
    finally:
        stop.set()

    revoked_at = _revoked_at(live, _public_id(key)).timestamp()
    refused_at = next((at for at, status in statuses if status == 401), None)
    assert refused_at is not None, f"still accepted {time.time() - revoked_at:.1f} s after revocation"
    delay = refused_at - revoked_at
    print(f"\ncross-process revocation: refused {delay * 1000:.0f} ms after the revocation committed")
    assert result.returncode == 0
    assert statuses[0][1] == 200 and {status for _, status in statuses} == {200, 401}
    assert delay <= CROSS_PROCESS_BOUND
