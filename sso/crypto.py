"""Refresh tokens at rest: Fernet under a key derived from SECRET_KEY (its own derivation label,
so it shares nothing with provider credentials' key)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = hashlib.sha256(b"keygate-sso-refresh-token\0" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def unseal(sealed: str) -> str:
    """The plaintext, or "" when there is none or SECRET_KEY changed since it was sealed."""
    if not sealed:
        return ""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return ""
