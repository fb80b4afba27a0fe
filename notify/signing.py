"""Standard Webhooks signatures (https://www.standardwebhooks.com, the ``standardwebhooks``
library): ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the base64-decoded secret)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from cryptography.fernet import Fernet
from django.conf import settings
from standardwebhooks.webhooks import Webhook


def _fernet() -> Fernet:
    key = hashlib.sha256(b"keygate-webhook-secret\0" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    """The secret (raises cryptography's InvalidToken when SECRET_KEY changed: re-create the endpoint)."""
    return _fernet().decrypt(sealed.encode()).decode()


def new_secret() -> str:
    """``whsec_`` + 32 random bytes in base64, the format the spec and its libraries read."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, when: datetime, body: str) -> dict[str, str]:
    """The three headers for ``body`` sent at ``when`` (an aware datetime)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, when, body),
    }
