"""Who is calling: DRF authentication for Keygate keys on the proxy (Bearer or x-api-key).

Follows DRF's contract — ``authenticate()`` returns ``None`` (no credential of ours),
``(user, auth)``, or raises ``AuthenticationFailed`` — with an async twin for the event loop.
The order is NetBox's: parse, look up (cache, then DB), verify (argon2, once per key per
process), then state: revoked, expired, owner disabled, client IP. Every failure says the same
thing to the caller, "to guard against key enumeration"; ``X-Debug-Auth: true`` adds headers
that explain the decision (never a secret).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import ErrorDetail

from gateway import metrics
from gateway.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied, Throttled
from keys.services import KeyState

if TYPE_CHECKING:
    from gateway.cache import KeyCache
    from gateway.http import GatewayRequest

INVALID_KEY_MESSAGE = "Invalid API key. Check that it is a current Keygate key: it may be mistyped, expired or revoked."
MISSING_KEY_MESSAGE = "No API key provided. Send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header."


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """Why a request was (or was not) authenticated; shown only with ``X-Debug-Auth: true``."""

    status: str
    key_id: str = ""
    scopes: tuple[str, ...] = ()

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-keygate-auth-status", self.status.encode())]
        if self.key_id:
            headers.append((b"x-keygate-auth-key-id", self.key_id.encode()))
            headers.append((b"x-keygate-auth-scopes", ",".join(self.scopes).encode()))
        return headers


def credential(request: GatewayRequest, *, prefer_api_key_header: bool) -> str | None:
    """The presented key: ``Authorization: Bearer`` or ``x-api-key``, whichever the protocol prefers."""
    bearer = None
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            bearer = value.strip()
    api_key = request.headers.get("x-api-key")
    first, second = (api_key, bearer) if prefer_api_key_header else (bearer, api_key)
    return first or second or None


def ip_allowed(allowed: tuple[str, ...], client_ip: str | None) -> bool:
    if not allowed:
        return True
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in allowed)


_CACHE_RESULTS = {
    how: metrics.KEY_CACHE.labels(result)
    for how, result in (
        ("cached", "hit"),
        ("refreshed", "refresh"),
        ("verified", "miss"),
        ("invalid", "negative_hit"),
        ("malformed", "malformed"),
    )
}


class AuthFailuresThrottled(Throttled):
    """429 for a client address that failed authentication too often (brute-force guard)."""

    default_code = "too_many_failed_authentications"

    def __init__(self, wait: float) -> None:
        super().__init__(wait=wait)
        self.detail = ErrorDetail(
            "Too many failed authentications from this address. Try again later.", self.default_code
        )
        self.limit = "auth_failures"


class FailureCounter:
    """Failed authentications per client address in fixed one-minute windows, per process.

    Past ``limit`` failures in a window, keys this process has not already verified are refused
    from that address with 429 before any lookup, so guessing never reaches the database or
    argon2; keys already verified (the cache) keep working from it. Per process by design: the
    guard is about cost, and N processes allow at most N × ``limit`` guesses a minute.
    """

    def __init__(self, limit: int, window: float = 60.0, max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_addresses
        self._counts: dict[str, tuple[float, int]] = {}

    def _current(self, address: str, now: float) -> int:
        entry = self._counts.get(address)
        if entry is None or now - entry[0] >= self.window:
            return 0
        return entry[1]

    def blocked_for(self, address: str | None) -> float:
        """Seconds until ``address`` may try unknown keys again (0: it may now)."""
        if not self.limit or address is None:
            return 0.0
        now = time.monotonic()
        if self._current(address, now) < self.limit:
            return 0.0
        return self._counts[address][0] + self.window - now

    def add(self, address: str | None) -> None:
        if not self.limit or address is None:
            return
        now = time.monotonic()
        entry = self._counts.get(address)
        if entry is None or now - entry[0] >= self.window:
            if len(self._counts) >= self._max:
                self._counts = {a: e for a, e in self._counts.items() if now - e[0] < self.window}
                if len(self._counts) >= self._max:
                    self._counts.clear()
            self._counts[address] = (now, 1)
        else:
            self._counts[address] = (entry[0], entry[1] + 1)


class KeyAuthentication(BaseAuthentication):
    """Authenticate a Keygate key through the process's :class:`~gateway.cache.KeyCache`."""

    def __init__(self, cache: KeyCache, failures: FailureCounter | None = None) -> None:
        self.cache = cache
        self.failures = failures or FailureCounter(limit=0)

    def authenticate_header(self, request: GatewayRequest) -> str:
        return 'Bearer realm="keygate"'

    def authenticate(self, request: GatewayRequest) -> tuple[None, KeyState] | None:  # pragma: no cover
        raise NotImplementedError("the gateway authenticates on the event loop: use aauthenticate()")

    async def aauthenticate(self, request: GatewayRequest) -> tuple[None, KeyState]:
        raw = credential(request, prefer_api_key_header=request.prefers_api_key_header)
        if raw is None:
            request.auth_decision = AuthDecision("missing")
            raise NotAuthenticated(MISSING_KEY_MESSAGE)
        wait = self.failures.blocked_for(request.client_ip)
        if wait and not self.cache.knows(raw):
            request.auth_decision = AuthDecision("throttled")
            raise AuthFailuresThrottled(wait)
        state, how = await self.cache.authenticate(raw)
        _CACHE_RESULTS[how].inc()
        if state is None:
            self.failures.add(request.client_ip)
            request.auth_decision = AuthDecision("malformed" if how == "malformed" else "invalid")
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        reason = state.inactive_reason(timezone.now())
        request.auth_decision = AuthDecision(reason or "ok", state.public_id, state.model_patterns)
        if reason is not None:
            self.failures.add(request.client_ip)
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        if not ip_allowed(state.allowed_ips, request.client_ip):
            request.auth_decision = AuthDecision("ip_not_allowed", state.public_id, state.model_patterns)
            raise PermissionDenied(f"This key may not be used from {request.client_ip or 'this address'}.")
        return None, state
