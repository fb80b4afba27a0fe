"""Production settings pass ``manage.py check --deploy --fail-level WARNING``, and a production
start without its secrets refuses to run. Each case runs Django in a fresh process, with exactly
the environment SECURITY.md documents (no .env, no test mode)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.support.live import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "KEYGATE_HTTPS": "true",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "KEYGATE_PEPPER": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "keygate.example.com",
}

SETTINGS_PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "hsts_preload": settings.SECURE_HSTS_PRELOAD,
    "x_frame_options": settings.X_FRAME_OPTIONS,
    "csp_script_src": [str(s) for s in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"]],
    "debug": settings.DEBUG,
    "axes": settings.AXES_ENABLED,
}))
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KEYGATE_", "SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "SECURE_"))
        and key not in ("PYTEST_CURRENT_TEST", "ALLOWED_HOSTS")
    }
    full = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", "KEYGATE_ENV_FILE": os.devnull, **env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60, check=False
    )


def test_check_deploy_passes_with_production_settings() -> None:
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_are_https_only_with_hsts_and_csp() -> None:
    code = "import django; django.setup()\n" + SETTINGS_PROBE
    result = _run(["-c", code], PRODUCTION)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "session_cookie_secure": True,
        "csrf_cookie_secure": True,
        "session_cookie_httponly": True,
        "ssl_redirect": True,
        "hsts_seconds": 31536000,
        "hsts_subdomains": True,
        "hsts_preload": False,
        "x_frame_options": "DENY",
        "csp_script_src": ["'self'"],
        "debug": False,
        "axes": True,
    }


def test_without_https_check_deploy_fails() -> None:
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], {**PRODUCTION, "KEYGATE_HTTPS": "false"}
    )

    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE" in result.stderr + result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "KEYGATE_PEPPER"])
def test_a_production_start_without_a_secret_stops_with_a_clear_message(missing: str) -> None:
    env = {name: value for name, value in PRODUCTION.items() if name != missing}

    result = _run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
