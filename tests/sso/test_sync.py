"""`sso sync` for users it cannot ask the provider about (no refresh token): OIDC_SYNC_MAX_AGE_DAYS.
(The refresh-token path runs against a real provider in test_sso_live.py.)"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from sso import oidc
from sso.models import Identity

pytestmark = pytest.mark.django_db
ISSUER = "https://id.example.com"


@pytest.fixture(autouse=True)
def provider(monkeypatch) -> None:
    found = oidc.Discovery(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t", f"{ISSUER}/j", "", ("RS256",), (), ())
    monkeypatch.setattr(oidc, "discover", lambda **kwargs: found)


def _sso_user(name: str, days_since_sign_in: int) -> None:
    user = get_user_model().objects.create_user(name, f"{name}@example.com")
    Identity.objects.create(
        user=user, issuer=ISSUER, subject=name, last_sign_in_at=timezone.now() - timedelta(days=days_since_sign_in)
    )


def _sync(*args: str) -> str:
    out = StringIO()
    call_command("sso", "sync", *args, stdout=out)
    return out.getvalue()


@override_settings(OIDC_ENABLED=True, OIDC_ISSUER=ISSUER, OIDC_SYNC_MAX_AGE_DAYS=30)
def test_with_a_max_age_users_idle_longer_are_disabled_and_the_others_left_unchecked() -> None:
    _sso_user("idle", 40)
    _sso_user("recent", 3)
    assert "dry run: 0 kept, 1 disabled, 1 unchecked" in _sync("--dry-run")
    assert get_user_model().objects.get(username="idle").is_active
    out = _sync()
    assert "disabled   idle (idle)" in out and "0 kept, 1 disabled, 1 unchecked, 0 errors" in out
    assert not get_user_model().objects.get(username="idle").is_active
    assert get_user_model().objects.get(username="recent").is_active


@override_settings(OIDC_ENABLED=True, OIDC_ISSUER=ISSUER, OIDC_SYNC_MAX_AGE_DAYS=0)
def test_without_a_max_age_nobody_without_a_refresh_token_is_disabled() -> None:
    _sso_user("idle", 400)
    assert "0 disabled, 1 unchecked" in _sync()
    assert get_user_model().objects.get(username="idle").is_active


def test_sync_refuses_to_run_when_single_sign_on_is_off() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="single sign-on is off"):
        _sync()
