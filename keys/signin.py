"""Sign-in (dashboard and admin) with the password check counted first and bounded.

django-axes checks its failure count before the password and records the failure after it, so
20 parallel guesses all pass the check and 11–15 passwords got checked against a limit of 5.
:class:`BoundedModelBackend` (after axes' backend in ``AUTHENTICATION_BACKENDS``) counts each
attempt for its username and address in Django's cache *before* the password is checked — an
atomic increment, so the limit holds at any concurrency — and gives it back on success. Past the
limit the attempt is refused as a lockout (axes' 429 page), with no password checked.

The check itself (and the dummy hash Django computes for an unknown username) runs in a slot of
the process's argon2 limiter (:mod:`keys.costly`): at most a few 100 MiB argon2 runs at once,
a short line, and past it a 429 page with ``Retry-After`` — never a 500, never unbounded memory.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.hashers import get_hasher
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from keys import costly
from keys.middleware import login_lockout_response

# Set on a request refused because argon2 was busy: its retry-after, in seconds.
BUSY_ATTRIBUTE = "keygate_sign_in_busy"


def _attempts() -> costly.CacheWindowCounter:
    cool_off = settings.AXES_COOLOFF_TIME
    window = cool_off.total_seconds() if cool_off else 24 * 3600
    return costly.CacheWindowCounter(limit=settings.AXES_FAILURE_LIMIT, window=window, namespace="sign-in")


def password_cost_kib() -> int:
    """The memory an attempt may take: the default hasher's (the dummy hash uses it too)."""
    return int(getattr(get_hasher(), "memory_cost", 0)) or 1024


def _client_ip(request: HttpRequest) -> str:
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request) or "-"


class BoundedModelBackend(ModelBackend):
    """Django's ModelBackend, with the attempt counted before the check and argon2 bounded."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        name = f"{username}\0{_client_ip(request)}" if request is not None else None
        attempts = _attempts() if name is not None and settings.AXES_ENABLED else None
        if attempts is not None and attempts.take(name):
            request.axes_locked_out = True  # axes' middleware answers with the lockout page (429)
            raise PermissionDenied("too many sign-in attempts")
        try:
            with costly.argon2_limiter().slot(password_cost_kib()):
                user = super().authenticate(request, username=username, password=password, **kwargs)
        except costly.Argon2Busy as busy:
            if attempts is not None:
                attempts.give_back(name)  # no password was checked
            if request is not None:
                setattr(request, BUSY_ATTRIBUTE, busy.retry_after)
                request.axes_locked_out = True
            raise PermissionDenied("sign-in is busy") from None
        if user is not None and attempts is not None:
            # As axes does (AXES_RESET_ON_SUCCESS): a successful sign-in clears the count.
            if settings.AXES_RESET_ON_SUCCESS:
                attempts.reset(name)
            else:
                attempts.give_back(name)
        return user


def not_counted(request: HttpRequest, credentials: Any = None) -> bool:
    """``AXES_WHITELIST_CALLABLE``: an attempt refused because argon2 was busy checked nothing,
    so it is not a failure. Consulted by axes only after our backend ran."""
    return getattr(request, BUSY_ATTRIBUTE, None) is not None


def refused_sign_in_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the lockout page, or (argon2 busy) a 429 page saying to retry shortly."""
    retry_after = getattr(request, BUSY_ATTRIBUTE, None)
    if retry_after is None:
        return login_lockout_response(request, *args, **kwargs)
    form = AuthenticationForm(request)
    form.cleaned_data = {}
    form.add_error(None, ValidationError(_("Sign-in is busy. Try again in a few seconds."), code="busy"))
    response = render(request, "registration/login.html", {"form": form, "next": ""}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(retry_after)))
    add_never_cache_headers(response)
    return response
