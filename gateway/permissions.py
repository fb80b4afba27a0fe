"""What an authenticated key may do on the proxy: DRF permission classes, pure and in-memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission

from gateway.exceptions import PermissionDenied
from gateway.http import safe_model

if TYPE_CHECKING:
    from gateway.http import GatewayRequest


class IsInferenceKey(BasePermission):
    """Management keys manage keys over /api/v1/; they cannot call models."""

    message = "This is a management key: it can manage keys over /api/v1/ but cannot call models."
    code = "management_key"

    def has_permission(self, request: GatewayRequest, view: Any) -> bool:
        return not request.auth.is_management


class ModelInScope(BasePermission):
    """The requested model must match one of the key's model patterns, and its team's when it is
    in one (403 otherwise, naming which: ``x-keygate-limit-scope: key|team``)."""

    code = "model_not_allowed"

    def has_permission(self, request: GatewayRequest, view: Any) -> bool:
        model = request.model
        state = request.auth
        scope = state.model_refused_by(model) if model is not None else None
        if scope is None:
            return True
        if scope == "team":
            allowed = ", ".join(state.team.model_patterns)
            message = f"This key's team may not use the model '{safe_model(model)}'. The team allows: {allowed}."
        else:
            allowed = ", ".join(state.model_patterns)
            message = f"This key is not allowed to use the model '{safe_model(model)}'. Allowed: {allowed}."
        denied = PermissionDenied(message, self.code)
        denied.extra_headers = [(b"x-keygate-limit-scope", scope.encode())]
        raise denied
