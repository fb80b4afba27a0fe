"""GitHub secret scanning, as a token issuer sees it: verifying what GitHub sends, fetching what
it does not. No Django views here (``keys/views/security.py``) and no key logic (``keys/leaks.py``).

Two ways a leaked Keygate key reaches us from GitHub:

- **Partner program** (public repositories, gists, npm): GitHub POSTs a JSON array of
  ``{token, type, url, source}``, signed with ECDSA P-256 / SHA-256 over the raw body. The
  ``Github-Public-Key-Identifier`` header names the signing key, ``Github-Public-Key-Signature``
  carries the base64 DER signature; the keys are published as
  ``{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`` at
  ``KEYGATE_GITHUB_SCANNING_KEYS_URL``. :class:`SigningKeys` caches them by identifier and
  re-fetches (short timeout) only for an identifier it does not know, at most once a minute —
  never on every request, so a flood of made-up identifiers costs GitHub's server nothing.
- **Organisation alerts** (a custom pattern for our prefix in an organisation's secret
  scanning): a ``secret_scanning_alert`` webhook signed with HMAC-SHA256 of a shared secret
  (``X-Hub-Signature-256: sha256=<hex>``). It carries no secret, so :func:`fetch_alert_secret`
  reads the alert from GitHub's REST API with ``KEYGATE_GITHUB_TOKEN``. The URL is *built* from
  the configured ``KEYGATE_GITHUB_API_URL``, the repository's name and the alert number; no URL
  from the payload is ever followed (SSRF), and redirects are not followed either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

logger = logging.getLogger("keygate.security")

FETCH_TIMEOUT = 5.0  # seconds: GitHub gives a partner endpoint about 10 s to answer
REFRESH_AT_MOST_EVERY = 60.0  # seconds between two fetches of the key list for unknown identifiers
REFRESH_AFTER_FAILURE = 10.0  # seconds before retrying a fetch that failed
MAX_FETCH_BYTES = 1024 * 1024
MAX_SIGNATURE_LENGTH = 512  # base64 of a DER P-256 signature is ~96 characters
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
USER_AGENT = "keygate-secret-scanning"


class SigningKeysUnavailable(Exception):
    """GitHub's key list could not be fetched or read (the caller answers 503: GitHub retries)."""


class AlertFetchFailed(Exception):
    """The alert could not be read from GitHub's API (the caller answers 502)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as the error it is, never followed


_opener = urllib.request.build_opener(_NoRedirect)


def _get_json(url: str, headers: dict[str, str]) -> Any:
    """GET ``url`` and parse its JSON; raises OSError/ValueError on any failure."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})  # noqa: S310 (scheme checked)
    with _opener.open(request, timeout=FETCH_TIMEOUT) as response:
        body = response.read(MAX_FETCH_BYTES + 1)
    if len(body) > MAX_FETCH_BYTES:
        raise ValueError("response too large")
    return orjson.loads(body)


class SigningKeys:
    """GitHub's secret-scanning signing keys from one URL, cached by identifier."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at = float("-inf")
        self._failed = False
        self._lock = threading.Lock()

    def get(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        """The public key named ``identifier``; None if GitHub does not publish it.

        Raises :class:`SigningKeysUnavailable` when the identifier is unknown and the last fetch
        of the list failed.
        """
        key = self._keys.get(identifier)
        if key is not None:
            return key
        with self._lock:  # one fetch at a time; the others wait and read what it found
            wait = REFRESH_AFTER_FAILURE if self._failed else REFRESH_AT_MOST_EVERY
            if identifier not in self._keys and time.monotonic() - self._fetched_at >= wait:
                self._refresh()
        key = self._keys.get(identifier)
        if key is None and self._failed:
            raise SigningKeysUnavailable
        return key

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            listing = _get_json(self.url, {"Accept": "application/json"})
            entries = listing["public_keys"]
            if not isinstance(entries, list):
                raise ValueError("public_keys is not a list")
        except (OSError, ValueError, KeyError, TypeError) as error:
            self._failed = True
            logger.warning("could not fetch GitHub's secret-scanning keys from %s: %s", self.url, error)
            return
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in entries:
            try:
                key = load_pem_public_key(entry["key"].encode("ascii"))
            except (KeyError, TypeError, AttributeError, ValueError, UnicodeEncodeError):
                continue
            if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
                keys[str(entry.get("key_identifier", ""))] = key
        self._keys = keys
        self._failed = False


_signing_keys: dict[str, SigningKeys] = {}
_signing_keys_lock = threading.Lock()


def signing_keys(url: str) -> SigningKeys:
    """The process-wide cache for the key list at ``url``."""
    with _signing_keys_lock:
        return _signing_keys.setdefault(url, SigningKeys(url))


def verify_partner_signature(body: bytes, identifier: str, signature: str, *, keys_url: str) -> bool:
    """True when ``signature`` (base64 DER ECDSA P-256 / SHA-256) signs ``body`` under the key GitHub
    publishes as ``identifier``. Raises :class:`SigningKeysUnavailable` as :meth:`SigningKeys.get`."""
    if not identifier or not signature or len(identifier) > 256 or len(signature) > MAX_SIGNATURE_LENGTH:
        return False
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = signing_keys(keys_url).get(identifier)
    if key is None:
        return False
    try:
        key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_webhook_signature(body: bytes, header: str, secret: str) -> bool:
    """True when ``header`` is ``sha256=<hex HMAC-SHA256(secret, body)>`` (constant-time compare)."""
    if not secret or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.encode("ascii", "replace"))


def token_hash(token: str) -> str:
    """The feedback's ``token_hash``: hex SHA-256 of the token as GitHub sent it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertRef:
    """Which alert a webhook is about: enough to build its API URL, nothing to follow."""

    repository: str
    number: int

    @classmethod
    def from_payload(cls, payload: Any) -> AlertRef | None:
        try:
            repository = payload["repository"]["full_name"]
            number = payload["alert"]["number"]
        except (KeyError, TypeError):
            return None
        if not isinstance(repository, str) or not _REPO_RE.match(repository) or ".." in repository:
            return None
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2**31:
            return None
        return cls(repository=repository, number=number)

    def api_url(self, api_base: str) -> str:
        return f"{api_base}/repos/{self.repository}/secret-scanning/alerts/{self.number}"


@dataclass(frozen=True, slots=True)
class Alert:
    """The parts of a secret-scanning alert Keygate uses."""

    secret: str
    html_url: str
    secret_type: str


def fetch_alert_secret(ref: AlertRef, *, api_base: str, token: str) -> Alert:
    """Read the alert (with its secret) from GitHub's REST API. Raises :class:`AlertFetchFailed`."""
    url = ref.api_url(api_base)
    try:
        alert = _get_json(
            url,
            {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        secret = alert["secret"]
        if not isinstance(secret, str):
            raise ValueError("the alert has no secret")
    except (OSError, ValueError, KeyError, TypeError) as error:
        status = getattr(error, "code", None)
        logger.warning("could not read secret-scanning alert %s#%s: %s", ref.repository, ref.number, status or error)
        raise AlertFetchFailed from None
    html_url = alert.get("html_url")
    return Alert(
        secret=secret,
        html_url=html_url if isinstance(html_url, str) and html_url.startswith("https://") else "",
        secret_type=str(alert.get("secret_type") or "")[:64],
    )
