"""The gateway's failures, in DRF's vocabulary (``APIException`` with a status and a code).

Each is rendered in the caller's protocol dialect by :mod:`gateway.dialects`, so the official
SDKs raise their typed errors (401 → AuthenticationError, 403 → PermissionDeniedError, …).
"""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.exceptions import APIException, AuthenticationFailed, NotAuthenticated, PermissionDenied, Throttled

__all__ = [
    "APIException",
    "AuthenticationFailed",
    "BadRequest",
    "MethodNotAllowed",
    "ModelNotFound",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Throttled",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class BadRequest(exceptions.ParseError):
    """400: malformed JSON, a body that is not an object, a missing or invalid field."""

    default_code = "invalid_request_error"

    def __init__(self, detail: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code or self.default_code)
        self.param = param


class NotFound(exceptions.NotFound):
    default_code = "not_found"


class ModelNotFound(exceptions.NotFound):
    default_code = "model_not_found"

    def __init__(self, model: str) -> None:
        from gateway.http import safe_model

        super().__init__(f"The model '{safe_model(model)}' does not exist or is not served by this gateway.")
        self.param = "model"


class MethodNotAllowed(exceptions.MethodNotAllowed):
    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(method)
        self.allowed = allowed


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is larger than this gateway accepts."


class UpstreamError(APIException):
    """A failure between Keygate and the provider. ``kind`` names it for usage records."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "upstream_error"

    def __init__(self, detail: str, *, kind: str = "upstream_error", status_code: int | None = None) -> None:
        super().__init__(detail, kind)
        self.kind = kind
        if status_code is not None:
            self.status_code = status_code


class UpstreamUnavailable(UpstreamError):
    """502: the upstream could not be reached or broke the connection."""


class UpstreamTimeout(UpstreamError):
    """504: the upstream did not answer (or stalled) within its timeout."""

    status_code = status.HTTP_504_GATEWAY_TIMEOUT
