"""What the upstream receives from the live proxy, and what the client gets back with it."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest_live import ROUTES_REFRESH, UPSTREAM_SECRET, LiveKeygate, new_request_id, shell
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

VERSION = {"anthropic-version": "2023-06-01"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

CLIENT_ONLY_HEADERS = {
    "cookie": "sessionid=s3cret; csrftoken=abc",
    "proxy-authorization": "Basic dXNlcjpwYXNz",
    "x-forwarded-for": "203.0.113.9",
    "forwarded": "for=203.0.113.9",
    "x-real-ip": "203.0.113.9",
    "keep-alive": "timeout=5",
    "te": "trailers",
    "x-client-secret": "do-not-forward",
}


@pytest.mark.parametrize(
    ("path", "body", "style"),
    [
        pytest.param("/v1/chat/completions", CHAT, "bearer", id="openai-bearer"),
        pytest.param("/v1/chat/completions", CHAT, "x-api-key", id="openai-x-api-key"),
        pytest.param("/v1/messages", MESSAGE, "bearer", id="anthropic-bearer"),
        pytest.param("/v1/messages", MESSAGE, "x-api-key", id="anthropic-x-api-key"),
    ],
)
def test_the_upstream_gets_the_provider_credential_and_never_the_keygate_key(
    live: LiveKeygate, path: str, body: dict, style: str
) -> None:
    key = live.keys["all"]
    request_id = new_request_id()
    credential = {"authorization": f"Bearer {key}"} if style == "bearer" else {"x-api-key": key}

    response = live.post(path, key=None, json=body, headers={**VERSION, **credential, "x-request-id": request_id})

    record = live.upstream_request(request_id)
    assert response.status_code == 200
    if path == "/v1/messages":
        assert record["headers"]["x-api-key"] == UPSTREAM_SECRET
        assert "authorization" not in record["headers"]
    else:
        assert record["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"
        assert "x-api-key" not in record["headers"]
    assert key not in json.dumps(record)


def test_cookies_hop_by_hop_and_forwarding_headers_stay_with_keygate(live: LiveKeygate) -> None:
    request_id = new_request_id()

    response = live.post(
        "/v1/chat/completions",
        json=CHAT,
        headers={**CLIENT_ONLY_HEADERS, "connection": "keep-alive, x-client-secret", "x-request-id": request_id},
    )

    headers = live.upstream_request(request_id)["headers"]
    assert response.status_code == 200
    assert not set(CLIENT_ONLY_HEADERS) & set(headers)
    assert "s3cret" not in json.dumps(headers)
    assert headers.get("connection", "keep-alive").lower() == "keep-alive"  # aiohttp's own, not the client's


def test_the_response_carries_no_upstream_cookie_or_credential(live: LiveKeygate) -> None:
    response = live.post("/v1/chat/completions", json=CHAT)

    assert "set-cookie" not in response.headers
    assert UPSTREAM_SECRET not in str(response.headers) + response.text


def test_the_openai_beta_and_anthropic_beta_headers_are_forwarded(live: LiveKeygate) -> None:
    chat_id, message_id = new_request_id(), new_request_id()

    live.post("/v1/chat/completions", json=CHAT, headers={"openai-beta": "assistants=v2", "x-request-id": chat_id})
    live.post(
        "/v1/messages", json=MESSAGE, headers={**VERSION, "anthropic-beta": "tools-1", "x-request-id": message_id}
    )

    assert live.upstream_request(chat_id)["headers"]["openai-beta"] == "assistants=v2"
    assert live.upstream_request(message_id)["headers"]["anthropic-beta"] == "tools-1"
    assert live.upstream_request(message_id)["headers"]["anthropic-version"] == "2023-06-01"


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Request-Id", "Request-Id"])
def test_the_clients_request_id_is_echoed_and_forwarded(live: LiveKeygate, header: str) -> None:
    request_id = new_request_id()

    response = live.post("/v1/chat/completions", json=CHAT, headers={header: request_id})

    assert response.headers["x-request-id"] == response.headers["request-id"] == request_id
    assert live.upstream_request(request_id)["headers"]["x-request-id"] == request_id


def test_without_a_request_id_keygate_makes_one_and_forwards_it(live: LiveKeygate) -> None:
    response = live.post("/v1/chat/completions", json=CHAT)

    request_id = response.headers["x-request-id"]
    assert request_id.startswith("req_") and len(request_id) > 10
    assert live.upstream_request(request_id)["headers"]["x-request-id"] == request_id


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("has spaces in it", id="spaces"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param('a"b', id="quote"),
    ],
)
def test_an_unusable_request_id_is_replaced(live: LiveKeygate, bad_id: str) -> None:
    response = live.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": bad_id})

    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


# --- routes -----------------------------------------------------------------------------------


def test_a_new_route_with_an_upstream_model_renames_the_model_once_routes_reload(live: LiveKeygate) -> None:
    shell(
        live.server,
        "from gateway.models import Provider, Route\n"
        "Route.objects.create(provider=Provider.objects.get(name='openai'), model_pattern='house-model', "
        "upstream_model='gpt-4o-mini', priority=10)\n",
    )
    created = time.monotonic()

    def upstream_model() -> str | None:
        request_id = new_request_id()
        body = {"model": "house-model", "messages": [{"role": "user", "content": "which model?"}]}
        response = live.post("/v1/chat/completions", json=body, headers={"x-request-id": request_id})
        assert response.status_code == 200
        sent = live.upstream_request(request_id)["body"]
        assert sent["messages"] == body["messages"]
        return sent["model"] if sent["model"] == "gpt-4o-mini" else None

    assert wait_until(upstream_model, timeout=ROUTES_REFRESH + 5, interval=0.1) == "gpt-4o-mini"
    assert time.monotonic() - created < ROUTES_REFRESH + 2
