"""Single sign-on against a real OpenID provider (node-oidc-provider on loopback) and a real
Keygate server: the whole authorization code flow with PKCE, state and nonce, through a real HTTP
client following redirects — then `sso sync` against the same provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.sso.support import CLIENT_ID, CLIENT_SECRET, OpenIDProvider, sign_in
from tests.support.live import KeygateServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

ACCOUNTS = {
    "alice": {
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "groups": ["keygate-ops", "keygate-ml"],
    },
    "bob": {"email": "bob@example.com", "email_verified": True, "name": "Bob Stone", "groups": ["keygate-ml"]},
    "mallory": {"email": "alice@example.org", "email_verified": False, "name": "Mallory"},
}


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KeygateServer, OpenIDProvider]]:
    workdir = tmp_path_factory.mktemp("sso")
    keygate = KeygateServer(workdir)
    provider = OpenIDProvider(workdir, redirect_uri=f"{keygate.url}/sso/callback/")
    provider.set_accounts(ACCOUNTS)
    provider.start()
    keygate.env.update(
        {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_SCOPES": "openid email profile groups offline_access",
            "OIDC_PROVIDER_NAME": "Example SSO",
            "OIDC_OPERATOR_GROUPS": "keygate-ops",
            "OIDC_TEAM_MAP": "keygate-ml=ml:member",
            "KEYGATE_PUBLIC_URL": keygate.url,
        }
    )
    try:
        keygate.start()
        yield keygate, provider
    finally:
        keygate.stop()
        provider.stop()


def _identity(keygate: KeygateServer, username: str) -> list[tuple]:
    return keygate.query(
        "SELECT u.username, u.email, u.first_name, u.is_staff, u.is_active, i.groups, i.team_roles, i.is_operator "
        "FROM sso_identity i JOIN auth_user u ON u.id = i.user_id WHERE u.username = ?",
        username,
    )


def test_alice_signs_in_with_the_provider_and_lands_on_her_dashboard_as_an_operator(sso) -> None:
    keygate, _provider = sso
    landed = sign_in(keygate.url, "alice")
    assert landed.status_code == 200
    assert landed.url == f"{keygate.url}/"
    assert "alice" in landed.text
    [(username, email, first_name, is_staff, is_active, groups, roles, is_operator)] = _identity(keygate, "alice")
    assert (username, email, first_name, is_staff, is_active) == ("alice", "alice@example.com", "Alice", 1, 1)
    assert groups == '["keygate-ml", "keygate-ops"]'
    assert roles == '{"ml": "member"}'  # recorded for teams (sso.teams.sso_memberships)
    assert is_operator == 1
    assert keygate.query(
        "SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id "
        "JOIN auth_user u ON u.id = ug.user_id WHERE u.username = 'alice'"
    ) == [("Keygate operators (single sign-on)",)]


def test_the_sign_in_page_offers_the_provider_by_name(sso) -> None:
    keygate, _provider = sso
    page = requests.get(f"{keygate.url}/accounts/login/", timeout=10)
    assert "Sign in with Example SSO" in page.text


def test_a_second_sign_in_finds_the_same_user_by_subject(sso) -> None:
    keygate, _provider = sso
    sign_in(keygate.url, "alice")
    sign_in(keygate.url, "alice")
    assert keygate.query("SELECT count(*) FROM auth_user WHERE email = 'alice@example.com'") == [(1,)]


def test_a_replayed_callback_is_refused(sso) -> None:
    keygate, _provider = sso
    session = requests.Session()
    landed = sign_in(keygate.url, "bob", session=session)
    assert landed.url == f"{keygate.url}/"
    callback = next(r.url for r in landed.history if "/sso/callback/" in r.url)
    again = session.get(callback, timeout=10, allow_redirects=False)
    assert again.status_code == 302 and "sso=failed" in again.headers["Location"]  # the state was used up
    stranger = requests.get(callback, timeout=10, allow_redirects=False)
    assert stranger.status_code == 302 and "sso=failed" in stranger.headers["Location"]


def test_an_email_the_provider_did_not_verify_is_refused_and_no_user_is_made(sso) -> None:
    keygate, _provider = sso
    landed = sign_in(keygate.url, "mallory")
    assert landed.url == f"{keygate.url}/accounts/login/?sso=failed"
    assert "did not work" in landed.text
    assert keygate.query("SELECT count(*) FROM auth_user WHERE email = 'alice@example.org'") == [(0,)]
    assert keygate.query("SELECT count(*) FROM sso_identity WHERE subject = 'mallory'") == [(0,)]


def test_sso_show_prints_the_redirect_uri_to_register(sso) -> None:
    keygate, provider = sso
    shown = keygate.manage("sso", "show").stdout
    assert f"redirect URI         {keygate.url}/sso/callback/" in shown
    assert provider.issuer in shown
    assert CLIENT_SECRET not in shown
    assert "reachable; ID tokens signed with RS256" in shown


def test_sso_sync_disables_a_user_the_provider_no_longer_knows_and_their_key_stops_working(sso, tmp_path: Path) -> None:
    keygate, provider = sso
    sign_in(keygate.url, "alice")
    sign_in(keygate.url, "bob")
    [bob_key] = keygate.make_keys({"name": "bob's", "model_patterns": ["*"], "owner": "bob"})
    headers = {"Authorization": f"Bearer {bob_key}"}
    assert requests.get(f"{keygate.url}/v1/models", headers=headers, timeout=10).status_code == 200

    # The provider forgets bob, and alice leaves the operators' group.
    accounts = {name: claims for name, claims in ACCOUNTS.items() if name != "bob"}
    accounts["alice"] = {**accounts["alice"], "groups": ["keygate-ml"]}
    provider.set_accounts(accounts)
    dry = keygate.manage("sso", "sync", "--dry-run").stdout
    assert "disabled   bob" in dry and "dry run:" in dry
    assert _identity(keygate, "bob")[0][4] == 1

    synced = keygate.manage("sso", "sync").stdout
    assert "disabled   bob" in synced
    assert "1 kept, 1 disabled" in synced  # alice's refresh token still works
    assert _identity(keygate, "bob")[0][4] == 0
    alice = _identity(keygate, "alice")[0]
    assert alice[4] == 1  # still active
    assert (alice[3], alice[5], alice[7]) == (0, '["keygate-ml"]', 0)  # no longer staff or operator
    wait_until(
        lambda: requests.get(f"{keygate.url}/v1/models", headers=headers, timeout=10).status_code == 401,
        timeout=5,
        what="bob's key refused",
    )
    assert bob_key not in keygate.logs()
