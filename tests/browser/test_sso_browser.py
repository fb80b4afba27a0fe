"""Signing in through a real OpenID provider in Chromium: Keygate's "Sign in with …" button, the
provider's own login and consent pages (node-oidc-provider on loopback), back to the dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sso.support import CLIENT_ID, CLIENT_SECRET, OpenIDProvider
from tests.support.live import KeygateServer

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.timeout(180)]

ACCOUNTS = {
    "carol": {"email": "carol@example.com", "email_verified": True, "name": "Carol Danvers", "groups": ["ml"]},
    "mallory": {"email": "mallory@example.com", "email_verified": False, "name": "Mallory"},
}


@pytest.fixture(scope="module")
def sso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeygateServer]:
    workdir = tmp_path_factory.mktemp("sso-browser")
    keygate = KeygateServer(workdir)
    provider = OpenIDProvider(workdir, redirect_uri=f"{keygate.url}/sso/callback/")
    provider.set_accounts(ACCOUNTS)
    provider.start()
    keygate.env.update(
        {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_SCOPES": "openid email profile groups",
            "OIDC_PROVIDER_NAME": "Acme ID",
            "OIDC_TEAM_MAP": "ml=ML Platform:member",
            "KEYGATE_PUBLIC_URL": keygate.url,
            "KEYGATE_PASSWORD_LOGIN": "false",
            "KEYGATE_BREAK_GLASS_USER": "root",
        }
    )
    try:
        keygate.start()
        yield keygate
    finally:
        keygate.stop()
        provider.stop()


def _through_the_provider(page, keygate: KeygateServer, login: str, screenshot) -> None:
    page.goto(f"{keygate.url}/accounts/login/")
    assert page.locator('input[name="password"]').count() == 0  # passwords are off
    screenshot("sign-in-page")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent page


def test_carol_signs_in_with_the_provider_and_lands_on_her_dashboard(page, sso_server, screenshot) -> None:
    _through_the_provider(page, sso_server, "carol", screenshot)
    page.wait_for_url(f"{sso_server.url}/")
    assert page.locator(".who").inner_text() == "carol"
    assert page.get_by_role("link", name="Change password").count() == 0  # no password to change
    screenshot("dashboard")
    assert sso_server.query("SELECT team_roles FROM sso_identity WHERE subject = 'carol'") == [
        ('{"ML Platform": "member"}',)
    ]


def test_mallory_whose_email_is_not_verified_is_sent_back_with_an_explanation(page, sso_server, screenshot) -> None:
    _through_the_provider(page, sso_server, "mallory", screenshot)
    page.wait_for_url(f"{sso_server.url}/accounts/login/?sso=failed")
    assert "Signing in with Acme ID did not work" in page.get_by_role("alert").inner_text()
    screenshot("refused")
    assert sso_server.query("SELECT count(*) FROM auth_user WHERE username = 'mallory'") == [(0,)]
