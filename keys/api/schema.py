"""OpenAPI details drf-spectacular cannot guess: the management-key scheme and the API's scope."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ManagementKeyScheme(OpenApiAuthenticationExtension):
    target_class = "keys.api.authentication.ManagementKeyAuthentication"
    name = "managementKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


def only_management_api(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Document /api/v1/ only (the proxy's /v1/ has its own, provider-compatible contract)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]
