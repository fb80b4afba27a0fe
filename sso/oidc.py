"""The OpenID provider as Keygate sees it: its discovery document, its signing keys, and the
checks every ID token must pass. No Django models here.

- **Endpoints come only from discovery**: ``{OIDC_ISSUER}/.well-known/openid-configuration``,
  fetched without following redirects, whose ``issuer`` must equal ``OIDC_ISSUER`` exactly
  (OpenID Connect Discovery 1.0 §4.3) — so a document served elsewhere cannot redirect sign-in.
  Cached in the process for :data:`DISCOVERY_TTL`.
- **ID tokens** (OpenID Connect Core 1.0 §3.1.3.7): signed with an asymmetric algorithm the
  provider lists in ``id_token_signing_alg_values_supported`` (``none`` and HMAC are refused),
  by a key of its ``jwks_uri`` (re-fetched when an unknown ``kid`` appears, at most once per
  :data:`JWKS_REFETCH_INTERVAL`); ``iss`` = the issuer, ``aud`` contains the client id (and
  ``azp`` is the client id when there are several audiences), ``exp``/``iat`` present and not
  expired, ``nonce`` = the one this browser's session sent.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings

DISCOVERY_TTL = 3600.0
JWKS_REFETCH_INTERVAL = 60.0
CLOCK_SKEW = 60  # seconds of leeway on exp/iat/nbf between Keygate and the provider
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class OIDCError(Exception):
    """Sign-in through the provider failed; the message is safe to log (no token, no secret)."""


class TokenRefused(OIDCError):
    """The token endpoint refused the request; the message is the OAuth error code
    (``invalid_grant``: the code, or a refresh token, is not valid for a user it knows)."""


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the provider's discovery document says (only the fields Keygate uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    code_challenge_methods: tuple[str, ...]


_lock = threading.Lock()
_discovery: tuple[float, Discovery] | None = None
_jwks: dict[str, Any] = {"fetched": 0.0, "keys": []}


def _get_json(url: str) -> Any:
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        raise OIDCError(f"could not reach {url}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise OIDCError(f"{url} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise OIDCError(f"{url} did not answer JSON") from None


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def discover(*, refresh: bool = False) -> Discovery:
    """The provider's discovery document (cached for :data:`DISCOVERY_TTL`)."""
    global _discovery
    with _lock:
        if _discovery is not None and not refresh and time.monotonic() - _discovery[0] < DISCOVERY_TTL:
            return _discovery[1]
    issuer = settings.OIDC_ISSUER
    document = _get_json(discovery_url(issuer))
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise OIDCError(f"the discovery document's issuer is not {issuer!r}")
    try:
        found = Discovery(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
            userinfo_endpoint=str(document.get("userinfo_endpoint") or ""),
            algorithms=tuple(a for a in document.get("id_token_signing_alg_values_supported", []) if a in _ASYMMETRIC),
            token_auth_methods=tuple(document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]),
            code_challenge_methods=tuple(document.get("code_challenge_methods_supported") or []),
        )
    except KeyError as missing:
        raise OIDCError(f"the discovery document has no {missing.args[0]}") from None
    if not found.algorithms:
        raise OIDCError("the provider signs ID tokens with no asymmetric algorithm Keygate accepts")
    with _lock:
        _discovery = (time.monotonic(), found)
    return found


def forget() -> None:
    """Drop the cached discovery document and keys (tests; a changed configuration)."""
    global _discovery
    with _lock:
        _discovery = None
        _jwks.update(fetched=0.0, keys=[])


def _signing_key(provider: Discovery, kid: str | None, alg: str) -> jwt.PyJWK:
    for attempt in range(2):
        with _lock:
            keys = list(_jwks["keys"])
            stale = time.monotonic() - _jwks["fetched"] >= JWKS_REFETCH_INTERVAL
        for jwk in keys:
            if (kid is None or jwk.get("kid") == kid) and jwk.get("alg", alg) == alg and jwk.get("use", "sig") == "sig":
                try:
                    return jwt.PyJWK(jwk, algorithm=alg)
                except jwt.PyJWKError:
                    continue
        if attempt or not stale:
            break
        document = _get_json(provider.jwks_uri)
        published = list(document.get("keys", [])) if isinstance(document, dict) else []
        with _lock:
            _jwks.update(fetched=time.monotonic(), keys=published)
    raise OIDCError("the ID token is signed by a key the provider does not publish")


def verify_id_token(token: str, *, nonce: str | None, provider: Discovery | None = None) -> dict[str, Any]:
    """The ID token's claims, once every check of the module docstring passed; else OIDCError."""
    provider = provider or discover()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise OIDCError("the ID token is not a JWT") from None
    alg = header.get("alg")
    if alg not in provider.algorithms:
        raise OIDCError(f"the ID token's algorithm {alg!r} is not one Keygate accepts from this provider")
    key = _signing_key(provider, header.get("kid"), alg)
    client_id = settings.OIDC_CLIENT_ID
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=client_id,
            issuer=provider.issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise OIDCError(f"the ID token was refused: {type(error).__name__}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OIDCError("the ID token has several audiences and is not authorised for Keygate (azp)")
    if nonce is None or not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OIDCError("the ID token's nonce is not the one this sign-in sent")
    return claims
