"""Fixtures of the hardening suite. The live ones reuse the session's Keygate process and fake
upstream (``tests/conftest_live.py``), adding a few accounts to it."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.conftest_live import LiveKeygate, shell

ACCOUNTS = """
import json, sys
from django.contrib.auth.models import User
for spec in json.loads(sys.stdin.read()):
    user = User.objects.create_user(spec["username"], password=spec["password"])
    user.is_staff = user.is_superuser = spec["operator"]
    user.save()
"""


@pytest.fixture(scope="session")
def live_accounts(live: LiveKeygate) -> dict[str, str]:
    """Accounts on the live server: ``sec-operator`` (superuser) and ``sec-alice``; name → password."""
    accounts = {"sec-operator": "op-" + secrets.token_urlsafe(12), "sec-alice": "alice-" + secrets.token_urlsafe(12)}
    spec = [
        {"username": name, "password": password, "operator": name == "sec-operator"}
        for name, password in accounts.items()
    ]
    shell(live.server, ACCOUNTS, stdin=json.dumps(spec))
    return accounts
