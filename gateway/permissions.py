"""What an authenticated key may do on the proxy: DRF permission classes, pure and in-memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission

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
    """The requested model must match one of the key's model patterns (403 otherwise)."""

    code = "model_not_allowed"

    def has_permission(self, request: GatewayRequest, view: Any) -> bool:
        model = request.model
        if model is None or request.auth.allows_model(model):
            return True
        allowed = ", ".join(request.auth.model_patterns)
        self.message = f"This key is not allowed to use the model '{safe_model(model)}'. Allowed: {allowed}."
        return False
