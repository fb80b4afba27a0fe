"""Local passwords when single sign-on is the rule: ``KEYGATE_PASSWORD_LOGIN=false`` refuses every
password sign-in (dashboard and admin) except the break-glass operator named by
``KEYGATE_BREAK_GLASS_USER`` — the way in when the provider is down or misconfigured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from keys.signin import BoundedModelBackend


def password_allowed(username: str | None) -> bool:
    """May ``username`` sign in with a password?"""
    if settings.KEYGATE_PASSWORD_LOGIN:
        return True
    glass = settings.KEYGATE_BREAK_GLASS_USER
    return bool(glass) and username is not None and username.casefold() == glass.casefold()


class PasswordBackend(BoundedModelBackend):
    """Keygate's password backend (keys.signin), refusing names :func:`password_allowed` refuses —
    before anything is counted or hashed."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        name = username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD)
        if not password_allowed(name):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
