"""The authentication backend for sign-in through the OpenID provider (authorization code flow).

mozilla-django-oidc's views keep the state, nonce and PKCE verifier in the session and pop them
once (a replayed state is refused); this backend does the rest the library leaves to settings
Keygate does not use (fixed endpoints, no audience check, users matched by email): the endpoints
come from discovery, the ID token is checked by :func:`sso.oidc.verify_id_token`, and the user is
found by ``sub`` in :func:`sso.signin.apply_claims`.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from sso import oidc, signin
from sso.urls_public import callback_url

logger = logging.getLogger("keygate.sso")

#: Set on the request when a sign-in was refused: a reason safe to log (never shown in full).
REFUSAL_ATTRIBUTE = "keygate_sso_refusal"


class OIDCBackend(OIDCAuthenticationBackend):
    """Authenticates only the callback of a sign-in this session started (it passes ``nonce``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads fixed endpoints from settings here; Keygate's come from discovery.
        self.UserModel = get_user_model()

    def get_user(self, user_id: Any) -> Any:
        """The session's user, or None when they were disabled. (mozilla-django-oidc's get_user
        returns inactive users too; Django's ModelBackend does not, and sessions rely on it.)"""
        return ModelBackend.get_user(self, user_id)

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, nonce: str | None = None, code_verifier: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None or nonce is None or not settings.OIDC_ENABLED or kwargs:
            return None  # a password sign-in, or not this flow
        code = request.GET.get("code")
        if not code or not request.GET.get("state"):
            return None
        self.request = request
        try:
            provider = oidc.discover()
            tokens = self._exchange(provider, code, code_verifier, request)
            claims = oidc.verify_id_token(str(tokens.get("id_token") or ""), nonce=nonce, provider=provider)
            userinfo = fetch_userinfo(provider, str(tokens.get("access_token") or ""), claims["sub"])
            return signin.apply_claims({**userinfo, **claims}, refresh_token=str(tokens.get("refresh_token") or ""))
        except oidc.OIDCError as error:
            logger.warning("single sign-on refused: %s", error)
            setattr(request, REFUSAL_ATTRIBUTE, str(error))
            return None

    def _exchange(
        self, provider: oidc.Discovery, code: str, code_verifier: str | None, request: HttpRequest
    ) -> dict[str, Any]:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback_url(request)}
        if code_verifier:
            data["code_verifier"] = code_verifier
        return token_request(provider, data)


def fetch_userinfo(provider: oidc.Discovery, access_token: str, subject: str) -> dict[str, Any]:
    """The provider's userinfo for ``subject`` ({} when it has no userinfo endpoint)."""
    if not provider.userinfo_endpoint or not access_token:
        return {}
    try:
        response = requests.get(
            provider.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.OIDC_TIMEOUT,
            allow_redirects=False,
        )
        info = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        info = None
    if not isinstance(info, dict):
        raise oidc.OIDCError("the userinfo endpoint did not answer")
    if info.get("sub") != subject:  # OpenID Connect Core 1.0 §5.3.2
        raise oidc.OIDCError("the userinfo endpoint answered for another subject")
    return info


def token_request(provider: oidc.Discovery, data: dict[str, str]) -> dict[str, Any]:
    """POST to the provider's token endpoint with the client's credentials; the JSON answer.

    ``client_secret_post`` when the provider lists it, else HTTP Basic (the default of OAuth 2.0).
    Raises OIDCError with the OAuth error code only (the body may echo what was sent)."""
    auth = None
    body = {**data, "client_id": settings.OIDC_CLIENT_ID}
    if "client_secret_post" in provider.token_auth_methods:
        body["client_secret"] = settings.OIDC_CLIENT_SECRET
    else:
        auth = (settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET)
    try:
        response = requests.post(
            provider.token_endpoint, data=body, auth=auth, timeout=settings.OIDC_TIMEOUT, allow_redirects=False
        )
        answer = response.json()
    except (requests.RequestException, ValueError):
        raise oidc.OIDCError("the token endpoint did not answer JSON") from None
    if response.status_code != 200 or not isinstance(answer, dict):
        code = answer.get("error") if isinstance(answer, dict) else None
        raise oidc.TokenRefused(str(code or response.status_code))
    return answer
