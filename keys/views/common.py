"""What every dashboard view shares: the visible-key lookup, the client address, the
no-store response for pages that carry a plaintext key, and one-time form tokens."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

from keys import crypto, policy
from keys.models import APIKey
from keys.selectors import visible_keys

VIA = "dashboard"
_ONCE_SESSION_KEY = "keygate_once"
_ONCE_KEEP = 20


def client_ip(request: HttpRequest) -> str | None:
    """The peer address of the request (proxies are not trusted here)."""
    return request.META.get("REMOTE_ADDR") or None


def get_key_or_404(request: HttpRequest, public_id: str, *, to_change: bool = False) -> APIKey:
    """The key with this public id if the user may see it; 404 otherwise (never 403).

    ``to_change``: the user must also be allowed to change it (keys.policy); a key they may see
    but not change is a 403 — its existence is no secret to them.
    """
    if not crypto.PUBLIC_ID_RE.match(public_id):
        raise Http404
    key = visible_keys(request.user).filter(public_id=public_id).first()
    if key is None:
        raise Http404
    if to_change and not policy.can_change_key(request.user, key):
        raise PermissionDenied
    return key


def no_store(response: HttpResponse) -> HttpResponse:
    """Forbid every cache (browser, back/forward, proxy) from keeping this response."""
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


# One-time form tokens. A page that shows a new key is the answer to a POST; reloading it (or
# going back to it) would re-send that POST and mint another key. Each create/rotate form
# carries a token that the first POST consumes; a replay finds the token spent and is sent to
# the key's page instead, where the plaintext is no longer shown.


def once_token_issue(request: HttpRequest) -> str:
    token = secrets.token_urlsafe(16)
    pending: dict[str, Any] = dict(request.session.get(_ONCE_SESSION_KEY, {}))
    pending[token] = None
    request.session[_ONCE_SESSION_KEY] = dict(list(pending.items())[-_ONCE_KEEP:])
    return token


def once_token_state(request: HttpRequest) -> tuple[bool, str | None]:
    """``(usable, public_id)``: an unspent token is usable; a spent one names the key it made."""
    token = request.POST.get("once", "")
    pending = request.session.get(_ONCE_SESSION_KEY, {})
    if token not in pending:
        return False, None
    return pending[token] is None, pending[token]


def once_token_spend(request: HttpRequest, public_id: str) -> None:
    token = request.POST.get("once", "")
    pending: dict[str, Any] = dict(request.session.get(_ONCE_SESSION_KEY, {}))
    pending[token] = public_id
    request.session[_ONCE_SESSION_KEY] = pending
