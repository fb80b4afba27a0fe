"""Session lifetime for the dashboard, the admin and the REST API's session authentication.

Two bounds, both enforced on the server (a cookie's own expiry is only advice to the browser):

- **idle**: a session unused for more than ``KEYGATE_SESSION_IDLE_TIMEOUT`` seconds (default
  1 h; 0 turns it off) is ended on its next request;
- **absolute**: a session older than ``SESSION_COOKIE_AGE`` seconds since sign-in (default
  12 h) is ended, however busy. Django alone slides the expiry forward whenever the session is
  saved, so without this an active session would never end.

The last-activity time is written at most once a minute (one session save), so a busy user
costs no extra database write per request. ``login_lockout_response`` renders the page a
client sees when django-axes has locked out its username and address (429, not a 500).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

LAST_SEEN = "keygate_last_seen"
STARTED = "keygate_started"
# How stale the stored last-activity time may get before it is rewritten (seconds).
TOUCH_EVERY = 60


def session_started(request: HttpRequest) -> None:
    """Mark the current session as begun now (called at sign-in)."""
    now = int(time.time())
    request.session[STARTED] = now
    request.session[LAST_SEEN] = now


class SessionTimeoutMiddleware(MiddlewareMixin):
    """End signed-in sessions that were idle too long or are older than the absolute limit.

    Place it after ``AuthenticationMiddleware``. An ended session is flushed (as a sign-out);
    the request then goes on anonymous, so pages redirect to sign-in and the API answers 401/403.
    Sync and async capable, like Django's own middleware, so it adds no mode switch under ASGI.
    """

    def process_request(self, request: HttpRequest) -> None:
        session = getattr(request, "session", None)
        if session is None or SESSION_KEY not in session:
            return  # anonymous: nothing to end (and no session row is created)
        now = int(time.time())
        idle_limit = settings.KEYGATE_SESSION_IDLE_TIMEOUT
        absolute_limit = settings.SESSION_COOKIE_AGE
        started = session.get(STARTED)
        last_seen = session.get(LAST_SEEN)
        if not isinstance(started, int) or not isinstance(last_seen, int):
            # A session from before this middleware (or one made without a sign-in view): start counting now.
            session[STARTED] = started if isinstance(started, int) else now
            session[LAST_SEEN] = now
            return
        if (idle_limit and now - last_seen > idle_limit) or (absolute_limit and now - started > absolute_limit):
            logout(request)  # flushes the session and rotates the CSRF token
            return
        if now - last_seen >= TOUCH_EVERY:
            session[LAST_SEEN] = now


def login_lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """What a locked-out sign-in gets (``AXES_LOCKOUT_CALLABLE``): the sign-in page, 429, with a reason.

    The same page answers for the dashboard's and the admin's sign-in; it never says whether
    the username exists or the password was right.
    """
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = max(1, int(cool_off.total_seconds() // 60)) if cool_off else None
    if minutes:
        message = ngettext(
            "Too many failed sign-in attempts. Try again in %(minutes)d minute.",
            "Too many failed sign-in attempts. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
    else:
        message = _("Too many failed sign-in attempts. Ask an operator to unlock your account.")
    form = AuthenticationForm(request)
    form.cleaned_data = {}
    form.add_error(None, ValidationError(message, code="locked_out"))
    response = render(request, "registration/login.html", {"form": form, "next": ""}, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    add_never_cache_headers(response)
    return response
