"""The addresses the provider and emails use: built on KEYGATE_PUBLIC_URL when it is set."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def public_url(path: str, request: HttpRequest | None = None) -> str:
    """``path`` as people reach it: KEYGATE_PUBLIC_URL + path, else the request's own host."""
    if settings.KEYGATE_PUBLIC_URL:
        return settings.KEYGATE_PUBLIC_URL + path
    if request is not None:
        return request.build_absolute_uri(path)
    return f"http://127.0.0.1:8000{path}"


def callback_url(request: HttpRequest | None = None) -> str:
    """The redirect URI to register with the provider (``python manage.py sso show`` prints it)."""
    return public_url(reverse("sso:callback"), request)
