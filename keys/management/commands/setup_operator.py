"""Create the first operator account if there is none (run by `make run`).

With DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD set, that account is created if
absent. Otherwise, when no superuser exists yet, an `admin` account with a random password is
created and the password printed once. Existing accounts are never changed.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first operator (superuser) account if none exists; print its password once."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if username:
            if users.filter(username=username).exists():
                return
            if not password:
                password = secrets.token_urlsafe(15)
                self._announce(username, password)
            else:
                self.stdout.write(f"Created operator account {username!r} (password from DJANGO_SUPERUSER_PASSWORD).")
            users.create_superuser(
                username=username, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password=password
            )
            return
        if users.filter(is_superuser=True).exists():
            return
        username, password = "admin", secrets.token_urlsafe(15)
        users.create_superuser(username=username, email="", password=password)
        self._announce(username, password)

    @staticmethod
    def _url() -> str:
        from config.env import env_int, env_str

        host = env_str("HOST", "127.0.0.1")
        port = env_int("PORT", 8000)
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104 -- we only compare, to print a URL one can open

    def _announce(self, username: str, password: str) -> None:
        bar = "=" * 64
        self.stdout.write(
            f"\n{bar}\n  Keygate operator account created — this password is shown only once.\n"
            f"  username: {username}\n  password: {password}\n"
            f"  Sign in at {self._url()}/ (dashboard) or {self._url()}/admin/ (change it there).\n{bar}\n"
        )
