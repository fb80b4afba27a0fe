"""Upstream errors in the client's dialect: the status the SDKs key their exceptions on, and the type."""

from __future__ import annotations

import json

import pytest

from gateway.translate import Protocol, translate_error

CHAT, MESSAGES, RESPONSES = Protocol.CHAT, Protocol.MESSAGES, Protocol.RESPONSES


def anthropic_error(kind: str, message: str = "nope") -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def openai_error(kind: str, code: str | None = None, message: str = "nope") -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "kind", "client_status", "client_type"),
    [
        (529, "overloaded_error", 503, "server_overloaded"),
        (429, "rate_limit_error", 429, "rate_limit_error"),
        (400, "invalid_request_error", 400, "invalid_request_error"),
        (401, "authentication_error", 401, "authentication_error"),
        (403, "permission_error", 403, "permission_error"),
        (404, "not_found_error", 404, "invalid_request_error"),
        (500, "api_error", 500, "api_error"),
    ],
)
def test_an_anthropic_error_reaches_an_openai_client_with_the_status_its_sdk_expects(
    status, kind, client_status, client_type
):
    for target in (CHAT, RESPONSES):
        got_status, body = translate_error(status, anthropic_error(kind), source=MESSAGES, target=target)
        assert got_status == client_status
        assert body["error"]["type"] == client_type and body["error"]["message"] == "nope"
        assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("status", "client_status", "client_type"),
    [
        (503, 529, "overloaded_error"),
        (429, 429, "rate_limit_error"),
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (502, 502, "api_error"),
    ],
)
def test_an_openai_error_reaches_an_anthropic_client_with_the_status_its_sdk_expects(
    status, client_status, client_type
):
    got_status, body = translate_error(status, openai_error("whatever"), source=CHAT, target=MESSAGES)
    assert got_status == client_status
    assert body == {"type": "error", "error": {"type": client_type, "message": "nope"}}


def test_a_context_overflow_keeps_the_words_each_client_looks_for():
    _, body = translate_error(
        400,
        openai_error("invalid_request_error", "context_length_exceeded", "too many tokens"),
        source=CHAT,
        target=MESSAGES,
    )
    assert body["error"]["message"].startswith("prompt is too long")
    _, body = translate_error(
        400,
        anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        source=MESSAGES,
        target=CHAT,
    )
    assert body["error"]["code"] == "context_length_exceeded"


def test_an_upstream_page_that_is_not_an_error_object_is_never_echoed():
    status, body = translate_error(502, b"<html>Bad gateway at 10.0.0.7</html>", source=CHAT, target=MESSAGES)
    assert status == 502 and "10.0.0.7" not in json.dumps(body)
    assert body["error"]["message"] == "The upstream provider answered with HTTP 502."


def test_the_openai_sdk_raises_its_typed_exceptions_on_translated_anthropic_errors():
    import httpx2
    import openai

    for status, kind, exception in [
        (529, "overloaded_error", openai.InternalServerError),
        (429, "rate_limit_error", openai.RateLimitError),
        (401, "authentication_error", openai.AuthenticationError),
    ]:
        client_status, body = translate_error(status, anthropic_error(kind), source=MESSAGES, target=CHAT)
        transport = httpx2.MockTransport(lambda request, s=client_status, b=body: httpx2.Response(s, json=b))
        client = openai.OpenAI(
            api_key="k", base_url="http://gateway/v1", http_client=httpx2.Client(transport=transport), max_retries=0
        )
        with pytest.raises(exception):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_the_anthropic_sdk_raises_its_typed_exceptions_on_translated_openai_errors():
    import anthropic
    import httpx2

    for status, exception in [
        (503, anthropic.OverloadedError if hasattr(anthropic, "OverloadedError") else anthropic.InternalServerError),
        (429, anthropic.RateLimitError),
        (403, anthropic.PermissionDeniedError),
    ]:
        client_status, body = translate_error(status, openai_error("x"), source=CHAT, target=MESSAGES)
        transport = httpx2.MockTransport(lambda request, s=client_status, b=body: httpx2.Response(s, json=b))
        client = anthropic.Anthropic(
            api_key="k", base_url="http://gateway", http_client=httpx2.Client(transport=transport), max_retries=0
        )
        with pytest.raises(exception):
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
