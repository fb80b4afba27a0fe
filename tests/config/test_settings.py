"""config/settings.py as a deployment meets it: each case starts Django in a fresh process with
exactly the environment given (no .env, no test mode), as tests/security/test_deploy_check.py does.

Finding 8 of issue #10: with the default settings a password reset wrote its link — a working
token — to the server log (the console email backend). Finding 10: SECURE_PROXY_SSL_HEADER=false
turned the setting on.
"""

from __future__ import annotations

import json
import secrets

import pytest
from django.core import mail
from django.test import Client

from tests.security.test_deploy_check import _run

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "KEYGATE_PEPPER": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "keygate.example.com",
}

PROBE = """
import json
import django
django.setup()
from django.conf import settings
print(json.dumps({
    "email_backend": settings.EMAIL_BACKEND,
    "email_host": getattr(settings, "EMAIL_HOST", None),
    "email_port": getattr(settings, "EMAIL_PORT", None),
    "email_user": getattr(settings, "EMAIL_HOST_USER", None),
    "email_tls": getattr(settings, "EMAIL_USE_TLS", None),
    "password_reset": settings.KEYGATE_PASSWORD_RESET,
    "proxy_ssl_header": getattr(settings, "SECURE_PROXY_SSL_HEADER", None),
}))
"""


def _settings(**env: str) -> dict:
    result = _run(["-c", PROBE], {**PRODUCTION, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _refused(**env: str) -> str:
    result = _run(["-c", PROBE], {**PRODUCTION, **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr


def test_the_default_production_settings_send_no_email_and_log_no_reset_link() -> None:
    values = _settings()
    assert values["email_backend"] == "django.core.mail.backends.dummy.EmailBackend"
    assert values["password_reset"] is False


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, id="console-backend"),
        pytest.param({"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}, id="file-backend"),
        pytest.param({"EMAIL_URL": "consolemail://"}, id="console-url"),
    ],
)
def test_with_debug_off_a_backend_that_writes_mail_to_the_log_stops_start_up(env: dict[str, str]) -> None:
    stderr = _refused(**env)
    assert "EMAIL_URL" in stderr and "KEYGATE_ALLOW_CONSOLE_EMAIL" in stderr


def test_the_console_backend_is_allowed_when_explicitly_accepted() -> None:
    values = _settings(
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend", KEYGATE_ALLOW_CONSOLE_EMAIL="true"
    )
    assert values["email_backend"].endswith("console.EmailBackend") and values["password_reset"] is True


def test_debug_uses_the_console_backend_for_development() -> None:
    values = _settings(DEBUG="true")
    assert values["email_backend"].endswith("console.EmailBackend") and values["password_reset"] is True


def test_email_url_configures_smtp() -> None:
    values = _settings(EMAIL_URL="smtp+tls://mailer:pa%24%24word@mail.example.com:587")
    assert values["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["email_host"], values["email_port"], values["email_user"], values["email_tls"]) == (
        "mail.example.com",
        587,
        "mailer",
        True,
    )
    assert values["password_reset"] is True


def test_a_bad_email_url_names_the_variable_but_never_its_password() -> None:
    stderr = _refused(EMAIL_URL="carrier-pigeon://mailer:hunter2-secret@mail.example.com")
    assert "EMAIL_URL" in stderr and "hunter2-secret" not in stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", None), ("0", None), ("", None), ("true", ["HTTP_X_FORWARDED_PROTO", "https"])],
)
def test_secure_proxy_ssl_header_is_a_strict_boolean(raw: str, expected: list[str] | None) -> None:
    assert _settings(SECURE_PROXY_SSL_HEADER=raw)["proxy_ssl_header"] == expected


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, id="proxy-header-not-a-boolean"),
        pytest.param({"KEYGATE_STATE_TTL": "soon"}, id="ttl-not-a-number"),
        pytest.param({"KEYGATE_MAX_BODY_BYTES": "-1"}, id="negative-size"),
        pytest.param({"LOG_LEVEL": "LOUD"}, id="unknown-log-level"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str]) -> None:
    assert next(iter(env)) in _refused(**env)


# --- password reset with no email configured (in process) ------------------------------------------


@pytest.mark.django_db
def test_without_email_the_reset_page_says_to_ask_an_operator_and_sends_nothing(settings, alice) -> None:
    settings.KEYGATE_PASSWORD_RESET = False
    client = Client()
    page = client.get("/accounts/password_reset/")
    sent = client.post("/accounts/password_reset/", {"email": alice.email})
    assert page.status_code == sent.status_code == 503
    assert "not set up on this server" in page.content.decode()
    assert mail.outbox == []


@pytest.mark.django_db
def test_with_email_the_reset_page_sends_the_link_by_email(settings, alice) -> None:
    settings.KEYGATE_PASSWORD_RESET = True
    Client().post("/accounts/password_reset/", {"email": alice.email})
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
