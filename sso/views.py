"""Sign-in through the OpenID provider: ``/sso/login/`` sends the browser there, ``/sso/callback/``
is where it comes back (the redirect URI to register: ``python manage.py sso show``)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.views import View
from mozilla_django_oidc.utils import add_state_and_verifier_and_nonce_to_session, generate_code_challenge
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, get_next_url

from sso import oidc
from sso.backend import OIDCBackend
from sso.urls_public import callback_url

logger = logging.getLogger("keygate.sso")


def _back_to_sign_in(reason: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'sso': reason})}")


class SignInView(View):
    """Start the authorization code flow: a fresh state, nonce and PKCE verifier (S256) are kept
    in the session (several tabs may sign in at once), and the browser goes to the provider's
    authorization endpoint — as its discovery document names it."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            provider = oidc.discover()
        except oidc.OIDCError as error:
            logger.error("single sign-on unavailable: %s", error)
            return _back_to_sign_in("unavailable")
        state, nonce = get_random_string(32), get_random_string(32)
        verifier = get_random_string(64)
        params = {
            "response_type": "code",
            "client_id": settings.OIDC_CLIENT_ID,
            "redirect_uri": callback_url(request),
            "scope": " ".join(settings.OIDC_SCOPES),
            "state": state,
            "nonce": nonce,
            "code_challenge": generate_code_challenge(verifier, "S256"),
            "code_challenge_method": "S256",
        }
        if "offline_access" in settings.OIDC_SCOPES:
            params["prompt"] = "consent"  # OpenID Connect Core 1.0 §11: offline_access needs it
        add_state_and_verifier_and_nonce_to_session(request, state, params, verifier)
        request.session["oidc_login_next"] = get_next_url(request, "next")
        return HttpResponseRedirect(f"{provider.authorization_endpoint}?{urlencode(params)}")


class CallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer (mozilla-django-oidc's callback view, driven here): this state's
    nonce and verifier are popped from the session (a second use of a state is refused), then
    :class:`sso.backend.OIDCBackend` does the checks. A refusal goes back to the sign-in page,
    which says sign-in failed (the reason is in the log).

    The backend is called directly, not through ``django.contrib.auth.authenticate``: that would
    let django-axes count each failed callback as a password failure of the user "None" at the
    client's address and, after five, refuse *every* SSO sign-in from that address (a whole
    office behind one NAT). A callback is not a guessable credential — it needs the code, the
    session's state and the PKCE verifier — so there is nothing for axes to throttle."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        state = request.GET.get("state")
        states = request.session.get("oidc_states") or {}
        if request.GET.get("error") or not request.GET.get("code") or not state:
            if state in states:  # the provider refused: that state is used up too
                del states[state]
                request.session.save()
            return self.login_failure()
        if not states:
            return self.login_failure()
        if state not in states:
            raise SuspiciousOperation("OIDC callback state not found in the session")
        entry = states.pop(state)
        request.session.save()
        # Re-read the session after the slow token exchange, as the library does, so other tabs'
        # states are not overwritten.
        request.session = request.session.__class__(request.session.session_key)
        user = OIDCBackend().authenticate(request, nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier"))
        if user is None or not user.is_active:
            return self.login_failure()
        user.backend = f"{OIDCBackend.__module__}.{OIDCBackend.__qualname__}"
        self.user = user
        return self.login_success()

    @property
    def failure_url(self) -> str:
        return f"{reverse('login')}?{urlencode({'sso': 'failed'})}"
