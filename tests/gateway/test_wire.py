"""gateway.wire: each protocol's error shape, with the headers clients act on."""

from __future__ import annotations

import json

import pytest

from gateway.exceptions import (
    AuthenticationFailed,
    BadRequest,
    MethodNotAllowed,
    ModelNotFound,
    NotAuthenticated,
    PayloadTooLarge,
    PermissionDenied,
    Throttled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.wire import Dialect, error_body, render_error

ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
}


def _headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in headers}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(BadRequest("bad", param="model"), 400, id="400"),
        pytest.param(AuthenticationFailed("no"), 401, id="401"),
        pytest.param(PermissionDenied("no"), 403, id="403"),
        pytest.param(ModelNotFound("gpt-9"), 404, id="404"),
        pytest.param(MethodNotAllowed("GET", ("POST",)), 405, id="405"),
        pytest.param(PayloadTooLarge(), 413, id="413"),
        pytest.param(Throttled(wait=1), 429, id="429"),
        pytest.param(UpstreamUnavailable("down"), 502, id="502"),
        pytest.param(UpstreamTimeout("slow"), 504, id="504"),
    ],
)
def test_an_openai_error_is_the_error_object_with_message_type_param_and_code(error: Exception, status: int) -> None:
    got_status, _, body = render_error(Dialect.OPENAI, error, "req_1")

    payload = json.loads(body)
    assert got_status == status
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code", "request_id"}
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert isinstance(payload["error"]["type"], str) and payload["error"]["type"]
    assert payload["error"]["request_id"] == "req_1"


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        pytest.param(BadRequest("bad"), 400, "invalid_request_error", id="400"),
        pytest.param(AuthenticationFailed("no"), 401, "authentication_error", id="401"),
        pytest.param(NotAuthenticated("none"), 401, "authentication_error", id="401-missing"),
        pytest.param(PermissionDenied("no"), 403, "permission_error", id="403"),
        pytest.param(ModelNotFound("gpt-9"), 404, "not_found_error", id="404"),
        pytest.param(PayloadTooLarge(), 413, "request_too_large", id="413"),
        pytest.param(Throttled(wait=1), 429, "rate_limit_error", id="429"),
        pytest.param(UpstreamUnavailable("down"), 502, "api_error", id="502"),
        pytest.param(UpstreamTimeout("slow"), 504, "timeout_error", id="504"),
    ],
)
def test_an_anthropic_error_is_type_error_with_a_documented_error_type(
    error: Exception, status: int, error_type: str
) -> None:
    got_status, _, body = render_error(Dialect.ANTHROPIC, error, "req_2")

    assert got_status == status
    assert json.loads(body) == {
        "type": "error",
        "error": {"type": error_type, "message": str(error.detail)},
        "request_id": "req_2",
    }


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504, 529])
def test_every_anthropic_error_type_is_one_anthropic_documents(status: int) -> None:
    payload = json.loads(error_body(Dialect.ANTHROPIC, status=status, message="m", error_type="not-a-type"))

    assert payload["error"]["type"] in ANTHROPIC_ERROR_TYPES


def test_an_upstream_anthropic_error_type_is_kept() -> None:
    payload = json.loads(error_body(Dialect.ANTHROPIC, status=529, message="busy", error_type="overloaded_error"))

    assert payload["error"] == {"type": "overloaded_error", "message": "busy"}


def test_an_upstream_openai_error_type_and_code_are_kept() -> None:
    payload = json.loads(
        error_body(Dialect.OPENAI, status=429, message="slow down", error_type="tokens", code="rate_limit_exceeded")
    )

    assert payload["error"] == {"message": "slow down", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}


@pytest.mark.parametrize(
    ("dialect", "challenge"),
    [
        pytest.param(Dialect.OPENAI, 'Bearer realm="keygate"', id="openai"),
        pytest.param(Dialect.ANTHROPIC, 'x-api-key realm="keygate"', id="anthropic"),
    ],
)
@pytest.mark.parametrize(
    "error", [pytest.param(AuthenticationFailed("no"), id="invalid"), pytest.param(NotAuthenticated("x"), id="missing")]
)
def test_a_401_carries_www_authenticate(dialect: Dialect, challenge: str, error: Exception) -> None:
    _, headers, _ = render_error(dialect, error, "req")

    assert _headers(headers)["www-authenticate"] == challenge


@pytest.mark.parametrize(
    "error",
    [BadRequest("x"), PermissionDenied("x"), Throttled(wait=1), UpstreamUnavailable("x")],
    ids=lambda error: type(error).__name__,
)
def test_only_a_401_carries_www_authenticate(error: Exception) -> None:
    _, headers, _ = render_error(Dialect.OPENAI, error, "req")

    assert "www-authenticate" not in _headers(headers)


@pytest.mark.parametrize(
    ("wait", "retry_after"),
    [pytest.param(2.2, "3", id="rounded-up"), pytest.param(0.01, "1", id="at-least-one"), pytest.param(5, "5", id="5")],
)
@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_a_429_carries_retry_after_in_whole_seconds(dialect: Dialect, wait: float, retry_after: str) -> None:
    _, headers, _ = render_error(dialect, Throttled(wait=wait), "req")

    assert _headers(headers)["retry-after"] == retry_after


def test_a_429_without_a_known_wait_has_no_retry_after() -> None:
    _, headers, _ = render_error(Dialect.OPENAI, Throttled(), "req")

    assert "retry-after" not in _headers(headers)


def test_a_405_names_the_allowed_methods() -> None:
    _, headers, _ = render_error(Dialect.OPENAI, MethodNotAllowed("GET", ("POST",)), "req")

    assert _headers(headers)["allow"] == "POST"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(AuthenticationFailed("no"), "invalid_api_key", id="invalid-key"),
        pytest.param(NotAuthenticated("no"), "missing_api_key", id="missing-key"),
        pytest.param(Throttled(wait=1), "rate_limit_exceeded", id="throttled"),
        pytest.param(ModelNotFound("gpt-9"), "model_not_found", id="model"),
    ],
)
def test_openai_codes_use_the_words_openai_clients_know(error: Exception, code: str) -> None:
    _, _, body = render_error(Dialect.OPENAI, error, "req")

    assert json.loads(body)["error"]["code"] == code


def test_the_param_is_reported_in_the_openai_dialect() -> None:
    _, _, body = render_error(Dialect.OPENAI, BadRequest("no model", param="model"), "req")

    assert json.loads(body)["error"]["param"] == "model"


def test_extra_headers_on_an_error_are_sent() -> None:
    error = Throttled(wait=1)
    error.extra_headers = [(b"x-ratelimit-limit-requests", b"10")]

    _, headers, _ = render_error(Dialect.OPENAI, error, "req")

    assert _headers(headers)["x-ratelimit-limit-requests"] == "10"


def test_an_error_without_a_request_id_leaves_it_out() -> None:
    openai_body = json.loads(error_body(Dialect.OPENAI, status=400, message="m"))
    anthropic_body = json.loads(error_body(Dialect.ANTHROPIC, status=400, message="m"))

    assert "request_id" not in openai_body["error"]
    assert "request_id" not in anthropic_body
