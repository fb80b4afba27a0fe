"""gateway.proxy and gateway.providers, without a network: the body and headers sent upstream,
and what is kept of an upstream's error message."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.http import GatewayRequest
from gateway.providers import anthropic, openai
from gateway.relay import _upstream_message, prepare_body
from gateway.routing import Deployment, Upstream
from gateway.wire import Dialect

CREDENTIAL = "sk-provider-credential-1234567890"
CLIENT_KEY = "sk-kg-client-key-that-must-stay-here"


def _request(
    endpoint: str, payload: dict[str, Any], headers: dict[str, str] | None = None, *, stream: bool = False
) -> GatewayRequest:
    dialect = Dialect.ANTHROPIC if endpoint.startswith("messages") else Dialect.OPENAI
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v1/{endpoint}",
        "headers": [(name.encode(), value.encode()) for name, value in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
    }
    request = GatewayRequest.from_scope(scope, dialect, endpoint)
    request.body = orjson.dumps(payload)
    request.json = payload
    request.model = payload.get("model")
    request.stream = stream
    return request


def _upstream(kind: str = "openai", credential: str | None = CREDENTIAL) -> Upstream:
    base = "http://upstream.test/v1" if kind == "openai" else "http://upstream.test"
    return Upstream(
        id=1,
        name="p",
        kind=kind,
        base_url=base,
        credential=credential,
        connect_timeout=1,
        first_byte_timeout=1,
        idle_timeout=1,
    )


def _route(upstream_model: str = "", kind: str = "openai") -> Deployment:
    return Deployment(_upstream(kind), upstream_model)


# --- the body -----------------------------------------------------------------------------


def test_a_plain_request_goes_upstream_byte_for_byte() -> None:
    request = _request("chat/completions", {"model": "gpt-4o", "messages": [], "x": 1.0})
    request.body = b'{"model":"gpt-4o",  "messages":[], "x":1.0}'

    body, _, drop = prepare_body(request, _route())

    assert body == request.body
    assert drop is False


def test_a_route_with_an_upstream_model_renames_the_model() -> None:
    request = _request("chat/completions", {"model": "house", "messages": [{"role": "user", "content": "hi"}]})

    body, payload, _ = prepare_body(request, _route(upstream_model="gpt-4o-mini"))

    assert json.loads(body) == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert payload["model"] == "gpt-4o-mini"
    assert request.model == "house"


@pytest.mark.parametrize("endpoint", ["chat/completions", "completions"])
def test_a_stream_asks_for_usage_and_flags_the_extra_chunk_for_dropping(endpoint: str) -> None:
    request = _request(endpoint, {"model": "gpt-4o", "stream": True}, stream=True)

    body, _, drop = prepare_body(request, _route())

    assert json.loads(body)["stream_options"] == {"include_usage": True}
    assert drop is True


def test_a_stream_that_asked_for_usage_itself_keeps_its_usage_chunk() -> None:
    payload = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    request = _request("chat/completions", payload, stream=True)

    body, _, drop = prepare_body(request, _route())

    assert body == request.body
    assert drop is False


def test_a_stream_that_declined_usage_gets_it_upstream_but_not_back() -> None:
    payload = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": False, "other": 1}}
    request = _request("chat/completions", payload, stream=True)

    body, _, drop = prepare_body(request, _route())

    assert json.loads(body)["stream_options"] == {"include_usage": True, "other": 1}
    assert drop is True


@pytest.mark.parametrize("endpoint", ["responses", "messages"])
def test_streams_that_always_report_usage_are_not_changed(endpoint: str) -> None:
    request = _request(endpoint, {"model": "m", "stream": True}, stream=True)

    body, _, drop = prepare_body(request, _route())

    assert (body, drop) == (request.body, False)


# --- the headers --------------------------------------------------------------------------

CLIENT_HEADERS = {
    "authorization": f"Bearer {CLIENT_KEY}",
    "x-api-key": CLIENT_KEY,
    "cookie": "sessionid=abc",
    "connection": "keep-alive, x-secret",
    "keep-alive": "timeout=5",
    "proxy-authorization": "Basic Zm9vOmJhcg==",
    "te": "trailers",
    "upgrade": "h2c",
    "x-forwarded-for": "10.0.0.1",
    "forwarded": "for=10.0.0.1",
    "x-secret": "hop",
    "host": "keygate.test",
    "content-length": "12",
    "x-request-id": "req-abc",
    "openai-beta": "assistants=v2",
    "anthropic-beta": "tools-2024",
    "anthropic-version": "2023-06-01",
}
NEVER_FORWARDED = {
    "cookie",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "upgrade",
    "x-forwarded-for",
    "forwarded",
    "x-secret",
    "host",
    "content-length",
}


def test_openai_upstreams_get_the_provider_credential_and_none_of_the_clients_headers() -> None:
    url, headers = openai.PROVIDER.build_request(
        _upstream("openai"), _request("chat/completions", {"model": "m"}, CLIENT_HEADERS)
    )

    assert url == "http://upstream.test/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {CREDENTIAL}"
    assert "x-api-key" not in headers
    assert CLIENT_KEY not in json.dumps(headers)
    assert not NEVER_FORWARDED & set(headers)
    assert headers["x-request-id"] == "req-abc"
    assert headers["openai-beta"] == "assistants=v2"
    assert "anthropic-beta" not in headers


def test_anthropic_upstreams_get_the_provider_credential_and_none_of_the_clients_headers() -> None:
    url, headers = anthropic.PROVIDER.build_request(
        _upstream("anthropic"), _request("messages", {"model": "m"}, CLIENT_HEADERS)
    )

    assert url == "http://upstream.test/v1/messages"
    assert headers["x-api-key"] == CREDENTIAL
    assert "authorization" not in headers
    assert CLIENT_KEY not in json.dumps(headers)
    assert not NEVER_FORWARDED & set(headers)
    assert headers["x-request-id"] == "req-abc"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "tools-2024"


def test_an_anthropic_upstream_gets_a_default_version_when_none_was_sent() -> None:
    _, headers = anthropic.PROVIDER.build_request(_upstream("anthropic"), _request("messages", {"model": "m"}))

    assert headers["anthropic-version"] == anthropic.DEFAULT_VERSION


def test_a_provider_without_a_credential_sends_none() -> None:
    request = _request("chat/completions", {"model": "m"}, CLIENT_HEADERS)

    _, headers = openai.PROVIDER.build_request(_upstream("openai", credential=None), request)

    assert "authorization" not in headers


# --- upstream error messages --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"error": {"message": f"Incorrect API key provided: {CREDENTIAL}.", "type": "x"}}, id="openai"),
        pytest.param(
            {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {CREDENTIAL}"}},
            id="anthropic",
        ),
        pytest.param({"error": f"key {CREDENTIAL} is not valid"}, id="string-error"),
    ],
)
def test_an_upstream_message_that_quotes_the_provider_credential_is_redacted(body: dict) -> None:
    message, _, _ = _upstream_message(json.dumps(body).encode(), 400, _upstream())

    assert CREDENTIAL not in message
    assert "[redacted]" in message


def test_an_upstream_message_keeps_its_type_and_code() -> None:
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}

    assert _upstream_message(json.dumps(body).encode(), 429, _upstream()) == (
        "slow down",
        "requests",
        "rate_limit_exceeded",
    )


@pytest.mark.parametrize("body", [b"<html>Bad Gateway</html>", b"", b"[]", b'{"error": 5}'])
def test_an_upstream_error_that_is_not_an_error_object_gets_a_generic_message(body: bytes) -> None:
    message, kind, code = _upstream_message(body, 503, _upstream())

    assert (message, kind, code) == ("The upstream provider answered with HTTP 503.", None, None)


def test_a_long_upstream_message_is_cut() -> None:
    body = {"error": {"message": "x" * 10_000}}

    message, _, _ = _upstream_message(json.dumps(body).encode(), 400, _upstream())

    assert len(message) == 2000


# --- retry-after --------------------------------------------------------------------------


class _Reply:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


@pytest.mark.parametrize(
    ("headers", "cap", "expected"),
    [
        pytest.param({"retry-after": "1"}, 2.0, 1.0, id="seconds-under-the-cap"),
        pytest.param({"retry-after-ms": "250", "retry-after": "1"}, 2.0, 0.25, id="milliseconds-win"),
        pytest.param({"retry-after": "5"}, 2.0, None, id="over-the-cap"),
        pytest.param({"retry-after": "1"}, 0.0, None, id="cap-zero-never"),
        pytest.param({"retry-after": "soon"}, 2.0, None, id="garbage"),
        pytest.param({}, 2.0, None, id="absent"),
    ],
)
def test_an_upstream_retry_after_is_honoured_only_under_the_routes_cap(
    headers: dict[str, str], cap: float, expected: float | None
) -> None:
    from gateway.proxy import _retry_after

    assert _retry_after(_Reply(headers), cap) == expected  # type: ignore[arg-type]
