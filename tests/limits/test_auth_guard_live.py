"""The brute-force guard: failed authentications per client address are throttled."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live import KeygateServer

pytestmark = pytest.mark.live

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_failed_authentications_are_throttled_per_address_without_slowing_valid_keys(tmp_path) -> None:
    with KeygateServer(tmp_path, env={"KEYGATE_AUTH_FAILURES_PER_MINUTE": "5"}) as server:
        (key,) = server.make_keys({"name": "valid", "model_patterns": "*"})
        valid = {"Authorization": f"Bearer {key}"}
        url = f"{server.url}/v1/chat/completions"
        with httpx.Client(timeout=10) as client:
            assert client.post(url, json=CHAT, headers=valid).status_code == 200  # verified and cached
            wrong = key[:-8] + ("A" if key[-8] != "A" else "B") + key[-7:]  # a typo: fails the checksum
            statuses = [
                client.post(url, json=CHAT, headers={"Authorization": f"Bearer {wrong}"}).status_code for _ in range(8)
            ]
            assert statuses == [401] * 5 + [429] * 3
            refused = client.post(url, json=CHAT, headers={"x-api-key": "sk-kg-guess"})
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "too_many_failed_authentications"
            assert client.post(url, json=CHAT, headers=valid).status_code == 200  # the valid key still works
