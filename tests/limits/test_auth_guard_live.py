"""The brute-force guard: failed authentications per client address are throttled."""

from __future__ import annotations

import httpx
import pytest

from keys import crypto
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
            typo = key[:-8] + ("A" if key[-8] != "A" else "B") + key[-7:]  # fails the checksum: free, never counted
            typos = [client.post(url, json=CHAT, headers={"x-api-key": typo}).status_code for _ in range(8)]
            assert typos == [401] * 8
            statuses = [
                client.post(url, json=CHAT, headers={"Authorization": f"Bearer {guess}"}).status_code
                for guess in (crypto.generate_key("sk-kg")[1] for _ in range(8))  # well-formed guesses
            ]
            assert statuses == [401] * 5 + [429] * 3
            refused = client.post(url, json=CHAT, headers={"x-api-key": crypto.generate_key("sk-kg")[1]})
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "too_many_failed_authentications"
            assert client.post(url, json=CHAT, headers=valid).status_code == 200  # the valid key still works
