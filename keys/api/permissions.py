"""May this caller manage keys? Signed-in users and management keys may; ordinary keys may not."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions
from rest_framework.request import Request

from keys.services import KeyState


class CanManageKeys(permissions.BasePermission):
    """Allow a session user or a management key; refuse (403) a key that may only call models."""

    message = _(
        "This key cannot manage keys: it may only call models. Use a management key "
        "(python manage.py keys create --management, or tick “Management key” in the dashboard)."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if isinstance(request.auth, KeyState):
            return request.auth.is_management
        return True
