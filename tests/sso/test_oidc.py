"""ID-token checks (sso/oidc.py): a token is accepted only when every check passes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings

from sso import oidc

ISSUER = "https://id.example.com"
CLIENT = "keygate"
NONCE = "n-0123456789"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PROVIDER = oidc.Discovery(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/auth",
    token_endpoint=f"{ISSUER}/token",
    jwks_uri=f"{ISSUER}/jwks",
    userinfo_endpoint=f"{ISSUER}/me",
    algorithms=("RS256",),
    token_auth_methods=("client_secret_basic",),
    code_challenge_methods=("S256",),
)


@pytest.fixture(autouse=True)
def published_keys() -> Iterator[None]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    oidc._jwks.update(fetched=time.monotonic(), keys=[{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}])
    with override_settings(OIDC_CLIENT_ID=CLIENT, OIDC_ISSUER=ISSUER):
        yield
    oidc.forget()


def _token(key: Any = KEY, alg: str = "RS256", kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300, "nonce": NONCE, **overrides}
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_a_token_signed_by_the_provider_for_keygate_with_this_sessions_nonce_is_accepted() -> None:
    assert oidc.verify_id_token(_token(), nonce=NONCE, provider=PROVIDER)["sub"] == "u-1"


def _tampered() -> str:
    header, payload, signature = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "token, nonce",
    [
        pytest.param(_tampered(), NONCE, id="payload changed after signing"),
        pytest.param(_token(key=OTHER_KEY), NONCE, id="signed by a key the provider does not publish"),
        pytest.param(_token(aud="another-app"), NONCE, id="wrong audience"),
        pytest.param(_token(aud=[CLIENT, "another-app"]), NONCE, id="several audiences without azp"),
        pytest.param(_token(iss="https://evil.example.com"), NONCE, id="wrong issuer"),
        pytest.param(_token(exp=int(time.time()) - 3600), NONCE, id="expired"),
        pytest.param(_token(exp=None), NONCE, id="no expiry"),
        pytest.param(_token(), "another-nonce", id="another sign-in's nonce"),
        pytest.param(_token(nonce=None), NONCE, id="no nonce"),
        pytest.param(_token(), None, id="no nonce in the session"),
        pytest.param(_token(key="shared-secret-" + "x" * 32, alg="HS256"), NONCE, id="HMAC with a shared secret"),
        pytest.param(
            jwt.encode({"iss": ISSUER, "sub": "u", "aud": CLIENT}, None, algorithm="none"), NONCE, id="alg none"
        ),
        pytest.param("not-a-jwt", NONCE, id="not a JWT"),
    ],
)
def test_a_token_failing_any_check_is_refused(token: str, nonce: str | None) -> None:
    with pytest.raises(oidc.OIDCError):
        oidc.verify_id_token(token, nonce=nonce, provider=PROVIDER)


def test_several_audiences_are_accepted_when_the_token_is_authorised_for_keygate() -> None:
    token = _token(aud=[CLIENT, "another-app"], azp=CLIENT)
    assert oidc.verify_id_token(token, nonce=NONCE, provider=PROVIDER)["azp"] == CLIENT


def test_the_error_message_never_holds_the_token() -> None:
    token = _token(aud="another-app")
    with pytest.raises(oidc.OIDCError) as refused:
        oidc.verify_id_token(token, nonce=NONCE, provider=PROVIDER)
    assert token not in str(refused.value)
