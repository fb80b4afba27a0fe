"""KEYGATE_PASSWORD_LOGIN=false: only the break-glass operator signs in with a password."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

SSO_ONLY = {
    "OIDC_ENABLED": True,
    "OIDC_PROVIDER_NAME": "Example SSO",
    "KEYGATE_PASSWORD_LOGIN": False,
    "KEYGATE_BREAK_GLASS_USER": "root",
}


@pytest.fixture
def users() -> None:
    get_user_model().objects.create_user("alice", password="alice-password-1")
    get_user_model().objects.create_superuser("root", password="root-password-1")


def _sign_in(username: str, password: str) -> int:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response.status_code


def test_with_passwords_on_everyone_signs_in_with_their_password(users: None) -> None:
    assert _sign_in("alice", "alice-password-1") == 302


@override_settings(**SSO_ONLY)
def test_with_passwords_off_alice_cannot_sign_in_with_her_password(users: None) -> None:
    assert _sign_in("alice", "alice-password-1") == 200  # the form again, with an error


@override_settings(**SSO_ONLY)
def test_with_passwords_off_the_break_glass_operator_still_can(users: None) -> None:
    assert _sign_in("root", "root-password-1") == 302
    assert Client().post("/admin/login/", {"username": "root", "password": "root-password-1"}).status_code == 302


@override_settings(**SSO_ONLY)
def test_with_passwords_off_the_sign_in_page_shows_only_the_provider() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Example SSO" in page
    assert 'name="password"' not in page
    assert "Forgot your password?" not in page
    assert 'name="password"' in Client().get("/accounts/login/?password=1").content.decode()


def test_without_single_sign_on_the_page_has_no_provider_button() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "/sso/login/" not in page and 'name="password"' in page


def test_the_sso_urls_are_404_when_single_sign_on_is_off() -> None:
    assert Client().get("/sso/login/").status_code == 404
    assert Client().get("/sso/callback/?code=x&state=y").status_code == 404


@override_settings(**SSO_ONLY)
def test_the_admin_sign_in_page_offers_the_provider_too() -> None:
    page = Client().get("/admin/login/?next=/admin/keys/").content.decode()
    assert 'href="/sso/login/?next=/admin/keys/"' in page and "Sign in with Example SSO" in page
