"""Who is calling the management API: a dashboard session, or a management key.

``Authorization: Bearer <key>`` is verified with :func:`keys.services.verify_key` (format and
checksum first, then one lookup and one argon2id verify — about 30 ms, acceptable for a
management API; the gateway's verified-key cache can be plugged in later). The caller then
acts as the key's owner; a key without an owner acts for the operators (every key).
Whether the key may *manage* keys is the permission's decision (:mod:`keys.api.permissions`),
so an ordinary key gets 403, not 401: it is a real key, just not one for this API.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from keys.models import APIKey
from keys.services import KeyState, verify_key

LAST_USED_EVERY = timedelta(minutes=1)

_INACTIVE = {
    "revoked": _("This key has been revoked."),
    "expired": _("This key has expired."),
    "owner_disabled": _("This key's owner is disabled."),
}


class OperatorKeyUser:
    """The identity of an ownerless management key: acts for the operators (sees every key).

    Not a database user, so writes record no actor; their ``via`` names the key instead.
    """

    pk = None
    id = None
    is_active = True
    is_staff = True
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    username = ""

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "operator key"


# Brute-force guard: a well-formed guess costs one argon2 verify (~30 ms, 19 MiB), so failures
# are counted per client address in the shared cache (Redis when configured, so every process
# counts together) and, past the limit, refused with 429 before any verify for the rest of the
# minute. Garbage never costs anything: verify_key rejects it before the database.
FAILURE_WINDOW = 60


def _failure_slot(address: str) -> tuple[str, int]:
    window = int(time.time()) // FAILURE_WINDOW
    return f"keygate:api-auth-failures:{address}:{window}", (window + 1) * FAILURE_WINDOW


def _failures_wait(address: str) -> int:
    limit = settings.KEYGATE_AUTH_FAILURES_PER_MINUTE
    if not limit:
        return 0
    slot, ends = _failure_slot(address)
    return max(1, int(ends - time.time())) if (cache.get(slot) or 0) >= limit else 0


def _failure(address: str) -> None:
    slot, _ = _failure_slot(address)
    if not cache.add(slot, 1, timeout=FAILURE_WINDOW * 2):
        try:
            cache.incr(slot)
        except ValueError:  # expired between add and incr
            cache.add(slot, 1, timeout=FAILURE_WINDOW * 2)


class ManagementKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <Keygate key>`` → ``(owner, KeyState)``; 401 for a bad key."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, KeyState] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not our scheme: let the session try
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header: use 'Bearer <key>'."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        address = request.META.get("REMOTE_ADDR") or "-"
        wait = _failures_wait(address)
        if wait:
            raise exceptions.Throttled(wait=wait, detail=str(_("Too many failed authentications from this address.")))
        state = verify_key(raw)
        if state is None:
            _failure(address)
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        now = timezone.now()
        reason = state.inactive_reason(now)
        if reason is not None:
            raise exceptions.AuthenticationFailed(_INACTIVE.get(reason, _("Invalid API key.")))
        self._touch(state, request, now)
        if state.owner_id is None:
            return OperatorKeyUser(), state
        return get_user_model().objects.get(pk=state.owner_id), state

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="keygate"'

    @staticmethod
    def _touch(state: KeyState, request: Request, now: Any) -> None:
        """Record the use, at most once a minute per key (one UPDATE, usually matching nothing)."""
        APIKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY), pk=state.id
        ).update(last_used_at=now, last_used_ip=request.META.get("REMOTE_ADDR") or None)
