"""The callback (sso/views.py) as a browser can misuse it, without a provider."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sso_on")]


@pytest.fixture
def sso_on():
    with override_settings(OIDC_ENABLED=True, OIDC_ISSUER="https://id.example.com"):
        yield


def _client_with_state(state: str = "the-state") -> Client:
    client = Client()
    session = client.session
    session["oidc_states"] = {state: {"nonce": "n", "code_verifier": "v", "added_on": 0}}
    session.save()
    return client


def test_a_callback_with_a_state_this_session_never_made_is_refused() -> None:
    assert _client_with_state().get("/sso/callback/?code=c&state=forged").status_code == 400


def test_a_callback_without_any_pending_sign_in_goes_back_to_the_sign_in_page() -> None:
    response = Client().get("/sso/callback/?code=c&state=s")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?sso=failed"


def test_an_error_from_the_provider_uses_the_state_up() -> None:
    client = _client_with_state()
    assert client.get("/sso/callback/?error=access_denied&state=the-state").status_code == 302
    assert client.session["oidc_states"] == {}


def test_failed_callbacks_never_lock_the_address_out_of_single_sign_on(monkeypatch) -> None:
    from axes.models import AccessAttempt

    from sso import backend, oidc

    def unreachable(*args, **kwargs):
        raise oidc.OIDCError("the provider is down")

    monkeypatch.setattr(backend.oidc, "discover", unreachable)
    for _ in range(8):
        response = _client_with_state().get("/sso/callback/?code=c&state=the-state")
        assert response.status_code == 302 and response["Location"].endswith("sso=failed")
    assert not AccessAttempt.objects.exists()
