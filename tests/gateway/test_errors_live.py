"""Requests the live proxy refuses before any upstream is called: each in the endpoint's dialect,
each with the request id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest_live import MAX_BODY_BYTES, LiveKeygate, new_request_id

pytestmark = pytest.mark.live

VERSION = {"anthropic-version": "2023-06-01"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
DIALECTS = [
    pytest.param("/v1/chat/completions", "openai", id="openai"),
    pytest.param("/v1/messages", "anthropic", id="anthropic"),
]


def _assert_dialect(response: httpx.Response, dialect: str, status: int) -> dict[str, Any]:
    """The error object, after checking the status and the dialect's shape."""
    assert response.status_code == status, response.text
    payload = response.json()
    if dialect == "anthropic":
        assert payload["type"] == "error"
        assert set(payload["error"]) == {"type", "message"}
        assert payload["request_id"] == response.headers["x-request-id"]
        return payload["error"]
    assert set(payload["error"]) == {"message", "type", "param", "code", "request_id"}
    assert payload["error"]["request_id"] == response.headers["x-request-id"]
    return payload["error"]


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(b'{"model": "gpt-4o", ', "not valid JSON", id="bad-json"),
        pytest.param(b"", "empty", id="empty-body"),
        pytest.param(b'["gpt-4o"]', "must be a JSON object", id="array"),
        pytest.param(b'"gpt-4o"', "must be a JSON object", id="string"),
        pytest.param(b'{"messages": []}', "model", id="missing-model"),
        pytest.param(b'{"model": null}', "model", id="null-model"),
        pytest.param(b'{"model": 4}', "model", id="number-model"),
        pytest.param(b'{"model": ["gpt-4o"]}', "model", id="list-model"),
        pytest.param(b'{"model": "   "}', "model", id="blank-model"),
        pytest.param(b'{"model": "gpt\\u0000x"}', "model", id="control-character"),
        pytest.param(b'{"model": "' + b"m" * 300 + b'"}', "model", id="overlong-model"),
        pytest.param(b'{"model": "gpt-4o", "stream": "yes"}', "stream", id="stream-not-boolean"),
    ],
)
def test_a_body_keygate_cannot_use_is_a_400_in_the_endpoints_dialect(
    live: LiveKeygate, path: str, dialect: str, content: bytes, says: str
) -> None:
    response = live.post(path, content=content, headers={**VERSION, "content-type": "application/json"})

    error = _assert_dialect(response, dialect, 400)
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "dialect", "allow"),
    [
        pytest.param("GET", "/v1/chat/completions", "openai", "POST", id="get-chat"),
        pytest.param("PUT", "/v1/embeddings", "openai", "POST", id="put-embeddings"),
        pytest.param("GET", "/v1/messages", "anthropic", "POST", id="get-messages"),
        # anthropic-version on the shared /v1/models: the Anthropic dialect, as its list has the Anthropic shape
        pytest.param("POST", "/v1/models", "anthropic", "GET, HEAD", id="post-models"),
        pytest.param("DELETE", "/v1/models/gpt-4o", "anthropic", "GET, HEAD", id="delete-model"),
    ],
)
def test_a_wrong_method_is_a_405_naming_the_allowed_one(
    live: LiveKeygate, method: str, path: str, dialect: str, allow: str
) -> None:
    response = live.request(method, path, headers=VERSION)

    _assert_dialect(response, dialect, 405)
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        pytest.param("/v1/audio/speech", "openai", id="openai"),
        pytest.param("/v1/chat/completions/extra", "openai", id="below-an-endpoint"),
        pytest.param("/v1/messages/batches", "anthropic", id="anthropic"),
    ],
)
def test_an_unknown_v1_path_is_a_404_in_its_dialect(live: LiveKeygate, path: str, dialect: str) -> None:
    response = live.post(path, json=CHAT, headers=VERSION)

    error = _assert_dialect(response, dialect, 404)
    assert error["type"] == ("not_found_error" if dialect == "anthropic" else "invalid_request_error")


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
def test_a_body_over_the_limit_is_a_413_naming_the_limit(live: LiveKeygate, path: str, dialect: str) -> None:
    body = b'{"model": "gpt-4o", "padding": "' + b"x" * MAX_BODY_BYTES + b'"}'

    response = live.post(path, content=body, headers={**VERSION, "content-type": "application/json"})

    error = _assert_dialect(response, dialect, 413)
    assert f"{MAX_BODY_BYTES} bytes" in error["message"]


def test_a_chunked_body_over_the_limit_is_a_413_too(live: LiveKeygate) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o", "padding": "'
        for _ in range(MAX_BODY_BYTES // 8192 + 1):
            yield b"x" * 8192
        yield b'"}'

    response = live.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})

    assert "content-length" not in response.request.headers
    _assert_dialect(response, "openai", 413)


def test_a_body_just_under_the_limit_is_accepted(live: LiveKeygate) -> None:
    head = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "padding": "'
    body = head + b"x" * (MAX_BODY_BYTES - len(head) - 2) + b'"}'
    assert len(body) == MAX_BODY_BYTES

    response = live.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 200


def test_an_unknown_model_for_models_retrieve_is_a_404(live: LiveKeygate) -> None:
    response = live.request("GET", "/v1/models/mock-not-routed-anywhere", key="gpt-4o")

    error = _assert_dialect(response, "openai", 404)
    assert error["code"] == "model_not_found"


CASES = [
    pytest.param("POST", "/v1/chat/completions", "all", CHAT, 200, id="200"),
    pytest.param("POST", "/v1/chat/completions", "all", {**CHAT, "stream": True}, 200, id="200-stream"),
    pytest.param(
        "POST", "/v1/messages", "all", {"model": "claude-haiku-4-5", "stream": True}, 200, id="200-messages-stream"
    ),
    pytest.param("GET", "/v1/models", "all", None, 200, id="200-models"),
    pytest.param("POST", "/v1/chat/completions", "all", {"messages": []}, 400, id="400"),
    pytest.param("POST", "/v1/messages", "all", {"model": 1}, 400, id="400-messages"),
    pytest.param("POST", "/v1/chat/completions", "revoked", CHAT, 401, id="401"),
    pytest.param("POST", "/v1/chat/completions", "gpt-4o", {**CHAT, "model": "gpt-4o-mini"}, 403, id="403"),
    pytest.param("POST", "/v1/nothing-here", "all", CHAT, 404, id="404"),
    pytest.param("GET", "/v1/chat/completions", "all", None, 405, id="405"),
    pytest.param("POST", "/v1/chat/completions", "all", {**CHAT, "padding": "x" * MAX_BODY_BYTES}, 413, id="413"),
    pytest.param("POST", "/v1/chat/completions", "all", {**CHAT, "model": "mock-error-429"}, 429, id="429-upstream"),
    pytest.param("POST", "/v1/chat/completions", "all", {**CHAT, "model": "dead-model"}, 502, id="502"),
]


@pytest.mark.parametrize(("method", "path", "key", "body", "status"), CASES)
def test_every_response_carries_the_request_id(
    live: LiveKeygate, method: str, path: str, key: str, body: Any, status: int
) -> None:
    request_id = new_request_id()

    response = live.request(method, path, key=key, json=body, headers={**VERSION, "x-request-id": request_id})

    assert response.status_code == status
    assert response.headers["x-request-id"] == response.headers["request-id"] == request_id
    if status >= 400:
        assert request_id in response.text
