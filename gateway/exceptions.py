"""The gateway's failures, in DRF's vocabulary (``APIException`` with a status and a code).

Every failure the gateway raises is a :class:`GatewayError`: it declares the attributes the
renderer (:func:`gateway.wire.render_error`) reads — ``param``, ``error_type``, ``kind``,
``wait``, ``allowed``, ``extra_headers``, ``limit`` — so the renderer reads them, it never probes
for them. DRF's names (``AuthenticationFailed``, ``Throttled``, …) are re-declared here on that
base, so the policy classes keep DRF's vocabulary. The official SDKs pick their exception class
from the status (401 → AuthenticationError, 403 → PermissionDeniedError, …).
"""

from __future__ import annotations

from typing import ClassVar

from rest_framework import exceptions, status
from rest_framework.exceptions import APIException

__all__ = [
    "APIException",
    "AuthenticationFailed",
    "BadRequest",
    "GatewayError",
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

Headers = list[tuple[bytes, bytes]]


class GatewayError(APIException):
    """Base of every gateway failure: what the renderer and the usage record read.

    - ``param``: the request field at fault (OpenAI's ``error.param``);
    - ``error_type``: a protocol error type that overrides the one the status implies;
    - ``kind``: names the failure in usage records and metrics (``upstream_timeout``, …);
    - ``wait``: seconds until a retry may succeed (``Retry-After`` on a 429);
    - ``allowed``: the methods a 405 names; ``extra_headers``: headers sent with the error;
    - ``limit``: which key limit refused a 429.
    """

    param: str | None = None
    error_type: str | None = None
    kind: str = ""
    wait: float | None = None
    allowed: tuple[str, ...] = ()
    extra_headers: Headers = []
    limit: str = ""
    adopted: ClassVar[bool] = False

    @property
    def reason(self) -> str:
        """What the usage record and the access log call this failure."""
        return self.kind or self.limit or str(self.default_code)

    @classmethod
    def adopt(cls, error: APIException) -> GatewayError:
        """A foreign DRF exception as a GatewayError with the same status, detail and code."""
        if isinstance(error, GatewayError):
            return error
        adopted = _Adopted(error.detail, error.get_codes() if isinstance(error.get_codes(), str) else None)
        adopted.status_code = error.status_code
        return adopted


class _Adopted(GatewayError):
    adopted = True


class AuthenticationFailed(GatewayError, exceptions.AuthenticationFailed):
    pass


class NotAuthenticated(GatewayError, exceptions.NotAuthenticated):
    pass


class PermissionDenied(GatewayError, exceptions.PermissionDenied):
    pass


class Throttled(GatewayError, exceptions.Throttled):
    pass


class BadRequest(GatewayError, exceptions.ParseError):
    """400: malformed JSON, a body that is not an object, a missing or invalid field."""

    default_code = "invalid_request_error"

    def __init__(self, detail: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, code or self.default_code)
        self.param = param


class NotFound(GatewayError, exceptions.NotFound):
    default_code = "not_found"


class ModelNotFound(GatewayError, exceptions.NotFound):
    default_code = "model_not_found"
    param = "model"

    def __init__(self, model: str) -> None:
        from gateway.wire import mask_echo

        super().__init__(f"The model '{mask_echo(model)}' does not exist or is not served by this gateway.")


class MethodNotAllowed(GatewayError, exceptions.MethodNotAllowed):
    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(method)
        self.allowed = allowed


class PayloadTooLarge(GatewayError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is larger than this gateway accepts."


class UpstreamError(GatewayError):
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
