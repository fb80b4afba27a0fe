"""Sign-in through the OpenID provider: ``/sso/login/`` sends the browser there, ``/sso/callback/``
is where it comes back (the redirect URI to register: ``python manage.py sso show``)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.views import View
from mozilla_django_oidc.utils import add_state_and_verifier_and_nonce_to_session, generate_code_challenge
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, get_next_url

from sso import oidc
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
    """The provider's answer: the library pops this state's nonce and verifier (a second use of
    a state is refused), then :class:`sso.backend.OIDCBackend` does the checks. A refusal goes
    back to the sign-in page, which says sign-in failed (the reason is in the log)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        return super().get(request)

    @property
    def failure_url(self) -> str:
        return f"{reverse('login')}?{urlencode({'sso': 'failed'})}"
