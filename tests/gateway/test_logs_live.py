"""No key — Keygate's or a provider's — ever reaches the server's log, at DEBUG level."""

from __future__ import annotations

import openai
import pytest

from tests.conftest_live import UPSTREAM_SECRET, WRONG_UPSTREAM_SECRET, LiveKeygate, new_request_id, unknown_key

pytestmark = pytest.mark.live

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def _every_kind_of_request(live: LiveKeygate) -> list[str]:
    """Successes and failures with every key of the session; the request ids that reached a route."""
    recorded = []
    for name in live.keys:
        for headers in ({}, {"x-debug-auth": "true"}):
            live.post("/v1/chat/completions", key=name, json=CHAT, headers=headers)
            live.post("/v1/chat/completions", key=None, json=CHAT, headers={**headers, "x-api-key": live.keys[name]})
    for key in (unknown_key(), "sk-kg-garbage", live.keys["all"] + "x"):
        live.post("/v1/chat/completions", key=key, json=CHAT)
    for model in ("badcred-model", "mock-error-500", "dead-model", "mock-invalid-json"):
        request_id = new_request_id()
        live.post("/v1/chat/completions", json={**CHAT, "model": model}, headers={"x-request-id": request_id})
        recorded.append(request_id)
    request_id = new_request_id()
    with pytest.raises(openai.APIError):
        list(
            live.openai("all").chat.completions.create(
                model="mock-reset", messages=CHAT["messages"], stream=True, extra_headers={"X-Request-Id": request_id}
            )
        )
    recorded.append(request_id)
    return recorded


def test_no_key_appears_in_the_server_log(live: LiveKeygate) -> None:
    recorded = _every_kind_of_request(live)
    live.usage(*recorded)  # everything those requests cause has happened, the usage writes included
    log = live.access_logged(*recorded)  # and the access-log lines, written by a background thread

    assert "Application startup complete" in log  # the log is captured
    for name, key in live.keys.items():
        secret = key[len("sk-kg-") + 12 :]
        assert key not in log, f"the {name!r} key was logged"
        assert secret not in log, f"the secret part of the {name!r} key was logged"
    assert UPSTREAM_SECRET not in log
    assert WRONG_UPSTREAM_SECRET not in log
