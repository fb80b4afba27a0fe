"""The single sign-on and notification settings are read strictly: a bad value stops start-up
naming the variable (config/settings.py), in a fresh process as a deployment meets it."""

from __future__ import annotations

import pytest

from tests.config.test_settings import _refused, _run

SSO = {"OIDC_ISSUER": "https://id.example.com", "OIDC_CLIENT_ID": "keygate", "OIDC_CLIENT_SECRET": "s3cret"}


@pytest.mark.parametrize(
    "env, named",
    [
        pytest.param(
            {**SSO, "OIDC_TEAM_MAP": "keygate-ml=ml:owner"}, "OIDC_TEAM_MAP", id="team map with an unknown role"
        ),
        pytest.param({**SSO, "OIDC_CLIENT_SECRET": ""}, "OIDC_CLIENT_SECRET", id="issuer without a client secret"),
        pytest.param({**SSO, "OIDC_ISSUER": "http://id.example.com"}, "OIDC_ISSUER", id="plain http off loopback"),
        pytest.param({**SSO, "OIDC_SCOPES": "email profile"}, "OIDC_SCOPES", id="scopes without openid"),
        pytest.param({"KEYGATE_PASSWORD_LOGIN": "false"}, "KEYGATE_PASSWORD_LOGIN", id="passwords off without SSO"),
        pytest.param({"KEYGATE_PASSWORD_LOGIN": "nope"}, "KEYGATE_PASSWORD_LOGIN", id="not a boolean"),
        pytest.param({"KEYGATE_PUBLIC_URL": "keys.example.com"}, "KEYGATE_PUBLIC_URL", id="public URL without scheme"),
        pytest.param({"KEYGATE_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "KEYGATE_WEBHOOK_ALLOW_PRIVATE", id="webhook flag"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str], named: str) -> None:
    assert named in _refused(**env)


def test_the_client_secret_is_never_echoed_in_the_error() -> None:
    stderr = _refused(**{**SSO, "OIDC_ISSUER": "http://id.example.com"})
    assert "s3cret" not in stderr


def test_a_full_single_sign_on_configuration_starts() -> None:
    env = {
        **SSO,
        "OIDC_TEAM_MAP": "keygate-ml-admins=ml:admin,keygate-ml=ml:member",
        "KEYGATE_PASSWORD_LOGIN": "false",
        "KEYGATE_BREAK_GLASS_USER": "root",
        "KEYGATE_PUBLIC_URL": "https://keys.example.com",
    }
    result = _run(
        ["-c", "import django; django.setup(); from django.conf import settings; print(settings.OIDC_ENABLED)"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "x" * 60,
            "KEYGATE_PEPPER": "p" * 40,
            "ALLOWED_HOSTS": "keys.example.com",
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("True")
