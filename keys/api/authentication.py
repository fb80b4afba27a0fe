"""Who is calling the management API: a dashboard session, or a management key.

``Authorization: Bearer <key>`` goes through the process's :class:`keys.verified.VerifiedKeys`:
a key costs one argon2 verify per process, then one indexed query per request for its current
state (so a revocation is seen at once). Before any lookup, a well-formed key this process has
not verified is counted per client address and per public id in Django's cache (Redis when
configured, so every process counts together) — the count is the admission, so the limit holds
for any number of parallel guesses — and given back once it proves a real key. A malformed key
costs nothing and is never counted. A full argon2 line is a 503 with ``Retry-After``.

The caller then acts as the key's owner; a key without an owner acts for the operators (every
key). The key's allowed networks are checked (``KeyState.ip_allowed``, the gateway's rule too).
Whether the key may *manage* keys is the permission's decision (:mod:`keys.api.permissions`),
so an ordinary key gets 403, not 401: it is a real key, just not one for this API.
"""

from __future__ import annotations

import math
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from keys.costly import Argon2Busy, AttemptGuard, AttemptsExceeded, CacheWindowCounter
from keys.models import APIKey
from keys.services import KeyState
from keys.verified import VerifiedKeys

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


FAILURE_WINDOW = 60


class AuthenticationOverloaded(exceptions.APIException):
    """503 + Retry-After: the process's argon2 line is full."""

    status_code = 503
    default_code = "overloaded"
    default_detail = _("Keygate is busy verifying keys. Retry shortly.")

    def __init__(self, wait: float) -> None:
        super().__init__()
        self.wait = max(1, math.ceil(wait))  # DRF turns ``wait`` into Retry-After


@lru_cache(maxsize=1)
def _verified(pepper: str, prefix: str, negative_ttl: float) -> VerifiedKeys:
    return VerifiedKeys(pepper=pepper.encode(), prefix=prefix, negative_ttl=negative_ttl)


def verified_keys() -> VerifiedKeys:
    """The process's management-key cache (rebuilt if the pepper or prefix setting changes)."""
    return _verified(settings.KEYGATE_PEPPER, settings.KEYGATE_KEY_PREFIX, settings.KEYGATE_NEGATIVE_TTL)


def attempt_guard() -> AttemptGuard:
    """Attempts per client address and per public id, shared through Django's cache."""
    return AttemptGuard(
        CacheWindowCounter(
            limit=settings.KEYGATE_AUTH_FAILURES_PER_MINUTE, window=FAILURE_WINDOW, namespace="api-auth-address"
        ),
        CacheWindowCounter(
            limit=settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE, window=FAILURE_WINDOW, namespace="api-auth-key"
        ),
    )


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
        address = request.META.get("REMOTE_ADDR") or None
        try:
            state, _how = verified_keys().authenticate(raw, address or "-", attempt_guard())
        except AttemptsExceeded as refused:
            raise exceptions.Throttled(
                wait=math.ceil(refused.wait), detail=str(_("Too many failed authentications. Try again later."))
            ) from None
        except Argon2Busy as busy:
            raise AuthenticationOverloaded(busy.retry_after) from None
        if state is None:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        now = timezone.now()
        reason = state.inactive_reason(now)
        if reason is not None:
            raise exceptions.AuthenticationFailed(_INACTIVE.get(reason, _("Invalid API key.")))
        if not state.ip_allowed(address):
            raise exceptions.PermissionDenied(_("This key may not be used from this address."))
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
