"""Credentials on the live proxy: where a key may be sent, and what a refused key is told."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest_live import LiveKeygate, unknown_key

pytestmark = pytest.mark.live

VERSION = {"anthropic-version": "2023-06-01"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

ENDPOINTS = [
    pytest.param("POST", "/v1/chat/completions", CHAT, id="chat"),
    pytest.param("POST", "/v1/completions", {"model": "gpt-4o", "prompt": "hi"}, id="completions"),
    pytest.param("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}, id="embeddings"),
    pytest.param("POST", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "hi"}, id="images"),
    pytest.param("POST", "/v1/responses", {"model": "gpt-4o", "input": "hi"}, id="responses"),
    pytest.param("POST", "/v1/messages", MESSAGE, id="messages"),
    pytest.param("POST", "/v1/messages/count_tokens", MESSAGE, id="count-tokens"),
    pytest.param("GET", "/v1/models", None, id="models"),
    pytest.param("GET", "/v1/models/gpt-4o", None, id="model"),
]


def _call(live: LiveKeygate, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return live.request(method, path, key=None, json=body, headers={**VERSION, **headers})


def _refused_keys(live: LiveKeygate) -> dict[str, str]:
    return {
        "unknown": unknown_key(),
        "malformed": "sk-kg-this-is-not-a-key",
        "expired": live.keys["expired"],
        "revoked": live.keys["revoked"],
    }


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_a_key_is_accepted_as_bearer_or_x_api_key_on_every_endpoint(
    live: LiveKeygate, method: str, path: str, body: Any, style: str
) -> None:
    key = live.keys["all"]
    headers = {"authorization": f"Bearer {key}"} if style == "bearer" else {"x-api-key": key}

    response = _call(live, method, path, body, headers)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "body", "dialect"),
    [
        pytest.param("/v1/chat/completions", CHAT, "openai", id="openai"),
        pytest.param("/v1/messages", MESSAGE, "anthropic", id="anthropic"),
    ],
)
def test_a_request_without_a_key_is_a_401_that_says_how_to_send_one(
    live: LiveKeygate, path: str, body: dict, dialect: str
) -> None:
    response = _call(live, "POST", path, body, {})

    assert response.status_code == 401
    assert response.headers["www-authenticate"]
    payload = response.json()
    message = payload["error"]["message"]
    assert "Authorization: Bearer" in message and "x-api-key" in message
    if dialect == "anthropic":
        assert payload["error"]["type"] == "authentication_error"
    else:
        assert payload["error"]["code"] == "missing_api_key"


def test_an_authorization_header_of_another_scheme_is_no_key(live: LiveKeygate) -> None:
    response = _call(live, "POST", "/v1/chat/completions", CHAT, {"authorization": f"Basic {live.keys['all']}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_the_messages_endpoints_require_anthropic_version(live: LiveKeygate, path: str) -> None:
    response = live.post(path, json=MESSAGE)

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in response.json()["error"]["message"]


def test_openai_endpoints_do_not_require_anthropic_version(live: LiveKeygate) -> None:
    assert live.post("/v1/chat/completions", json=CHAT).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [pytest.param("/v1/chat/completions", CHAT, id="openai"), pytest.param("/v1/messages", MESSAGE, id="anthropic")],
)
def test_every_refused_key_gets_the_same_401(live: LiveKeygate, path: str, body: dict) -> None:
    answers = {}
    for cause, key in _refused_keys(live).items():
        response = _call(live, "POST", path, body, {"authorization": f"Bearer {key}"})
        payload = response.json()
        payload.pop("request_id", None)
        payload.get("error", {}).pop("request_id", None)
        extra = sorted(name for name in response.headers if name.startswith("x-keygate"))
        answers[cause] = (response.status_code, response.headers["www-authenticate"], payload, extra)

    assert len({repr(answer) for answer in answers.values()}) == 1, answers
    assert answers["revoked"][0] == 401
    assert answers["revoked"][3] == []


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        pytest.param("unknown", "invalid", id="unknown"),
        pytest.param("malformed", "malformed", id="malformed"),
        pytest.param("expired", "expired", id="expired"),
        pytest.param("revoked", "revoked", id="revoked"),
    ],
)
def test_x_debug_auth_explains_why_a_key_was_refused(live: LiveKeygate, cause: str, status: str) -> None:
    key = _refused_keys(live)[cause]

    response = _call(
        live, "POST", "/v1/chat/completions", CHAT, {"authorization": f"Bearer {key}", "x-debug-auth": "true"}
    )

    assert response.status_code == 401
    assert response.headers["x-keygate-auth-status"] == status
    assert key not in str(response.headers) + response.text


def test_x_debug_auth_on_a_good_key_shows_its_public_id_and_scopes_never_the_key(live: LiveKeygate) -> None:
    key = live.keys["mixed"]

    response = _call(
        live, "POST", "/v1/chat/completions", CHAT, {"authorization": f"Bearer {key}", "x-debug-auth": "true"}
    )

    assert response.status_code == 200
    assert response.headers["x-keygate-auth-status"] == "ok"
    assert response.headers["x-keygate-auth-key-id"] == key[len("sk-kg-") :][:12]
    assert response.headers["x-keygate-auth-scopes"] == "gpt-4o,claude-sonnet-4-6"
    assert key not in str(response.headers)


def test_a_missing_key_with_x_debug_auth_says_missing(live: LiveKeygate) -> None:
    response = _call(live, "POST", "/v1/chat/completions", CHAT, {"x-debug-auth": "true"})

    assert response.headers["x-keygate-auth-status"] == "missing"


@pytest.mark.parametrize("value", ["false", "1", "yes"])
def test_only_x_debug_auth_true_adds_the_explanation(live: LiveKeygate, value: str) -> None:
    response = _call(
        live,
        "POST",
        "/v1/chat/completions",
        CHAT,
        {"authorization": f"Bearer {live.keys['revoked']}", "x-debug-auth": value},
    )

    assert response.status_code == 401
    assert not [name for name in response.headers if name.startswith("x-keygate")]
