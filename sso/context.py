"""Template context for the sign-in page: is single sign-on on, and under which name."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def sso(request: HttpRequest) -> dict[str, Any]:
    return {
        "sso_enabled": settings.OIDC_ENABLED,
        "sso_provider_name": settings.OIDC_PROVIDER_NAME,
        "password_login": settings.KEYGATE_PASSWORD_LOGIN,
    }
