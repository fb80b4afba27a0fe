"""Who is calling: DRF authentication for Keygate keys on the proxy (Bearer or x-api-key).

Follows DRF's contract — ``authenticate()`` returns ``None`` (no credential of ours),
``(user, auth)``, or raises ``AuthenticationFailed`` — with an async twin for the event loop.
The order is NetBox's: parse, look up (cache, then DB), verify (argon2, once per key per
process), then state: revoked, expired, owner disabled, client IP (``KeyState.ip_allowed``, the
rule the management API calls too). Every failure says the same thing to the caller, "to guard
against key enumeration"; ``X-Debug-Auth: true`` adds headers that explain the decision (never a
secret).

Counted before the work: a verification about to start is an *attempt*, counted per client
address and per public id before its lookup and argon2 (429 past either limit), and given back
once it proves a real key; a key refused from memory or joining a verification under way is
free. A key already verified here is never counted or refused, so its holder is unaffected by an
attack on its public id; a malformed key costs nothing and is never counted (an office NAT
sending typos locks nobody out). A full argon2 line is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import ErrorDetail

from gateway import metrics
from gateway.exceptions import AuthenticationFailed, GatewayError, NotAuthenticated, PermissionDenied, Throttled
from keys.costly import Argon2Busy, AttemptGuard, AttemptsExceeded
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
    """429 for a client address or a public id that failed authentication too often."""

    default_code = "too_many_failed_authentications"

    def __init__(self, wait: float) -> None:
        super().__init__(wait=wait)
        self.detail = ErrorDetail(
            "Too many failed authentications from this address or for this key. Try again later.", self.default_code
        )
        self.limit = "auth_failures"


class AuthenticationOverloaded(GatewayError):
    """503 + Retry-After: the process's argon2 line is full; a key it has verified still works."""

    status_code = 503
    default_code = "overloaded"
    default_detail = "Keygate is busy verifying keys. Retry shortly."

    def __init__(self, retry_after: float) -> None:
        super().__init__()
        self.wait = retry_after  # gateway.wire renders it as Retry-After (whole seconds, rounded up)


class FailureCounter:
    """Attempts per name (a client address, a public id) in fixed windows, in process memory.

    :meth:`take` counts an attempt *before* its lookup and argon2 — the count is the admission,
    so the limit holds at any concurrency — and refuses past ``limit`` in a window;
    :meth:`give_back` undoes it when the attempt proved a real key. Event-loop only (no lock).
    Per process by design: the guard is about cost, and N processes allow at most N × ``limit``
    attempts a minute. Memory is bounded by ``max_names``.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        max_names: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._max = max_names
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}

    def take(self, name: str) -> float:
        """Count one attempt: 0.0 when admitted, else seconds until ``name`` may try again."""
        if not self.limit:
            return 0.0
        now = self._clock()
        entry = self._counts.get(name)
        if entry is None or now - entry[0] >= self.window:
            if entry is None and len(self._counts) >= self._max:
                self._counts = {n: e for n, e in self._counts.items() if now - e[0] < self.window}
                if len(self._counts) >= self._max:
                    self._counts.clear()
            self._counts[name] = (now, 1)
            return 0.0
        started, count = entry
        if count >= self.limit:
            return started + self.window - now
        self._counts[name] = (started, count + 1)
        return 0.0

    def give_back(self, name: str) -> None:
        entry = self._counts.get(name)
        if entry is not None and entry[1] > 0:
            self._counts[name] = (entry[0], entry[1] - 1)

    def blocked_for(self, name: str) -> float:
        """Seconds until ``name`` may try again, without counting (0.0: it may now)."""
        entry = self._counts.get(name)
        if not self.limit or entry is None:
            return 0.0
        now = self._clock()
        if now - entry[0] >= self.window or entry[1] < self.limit:
            return 0.0
        return entry[0] + self.window - now


class KeyAuthentication(BaseAuthentication):
    """Authenticate a Keygate key through the process's :class:`~gateway.cache.KeyCache`.

    ``failures`` counts attempts per client address, ``key_failures`` per public id (default:
    ``settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE``); both before any lookup or argon2.
    """

    def __init__(
        self, cache: KeyCache, failures: FailureCounter | None = None, key_failures: FailureCounter | None = None
    ) -> None:
        self.cache = cache
        self.failures = failures or FailureCounter(limit=0)
        if key_failures is None:
            key_failures = FailureCounter(limit=getattr(settings, "KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE", 0))
        self.key_failures = key_failures
        self.guard = AttemptGuard(self.failures, key_failures)

    def authenticate_header(self, request: GatewayRequest) -> str:
        return 'Bearer realm="keygate"'

    def authenticate(self, request: GatewayRequest) -> tuple[None, KeyState] | None:  # pragma: no cover
        raise NotImplementedError("the gateway authenticates on the event loop: use aauthenticate()")

    async def aauthenticate(self, request: GatewayRequest) -> tuple[None, KeyState]:
        raw = credential(request, prefer_api_key_header=request.prefers_api_key_header)
        if raw is None:
            request.auth_decision = AuthDecision("missing")
            raise NotAuthenticated(MISSING_KEY_MESSAGE)
        try:
            state, how = await self.cache.authenticate(raw, request.client_ip, self.guard)
        except AttemptsExceeded as refused:
            request.auth_decision = AuthDecision("throttled")
            raise AuthFailuresThrottled(refused.wait) from None
        except Argon2Busy as busy:
            request.auth_decision = AuthDecision("overloaded")
            raise AuthenticationOverloaded(busy.retry_after) from None
        metrics.count(_CACHE_RESULTS[how])
        if state is None:
            request.auth_decision = AuthDecision("malformed" if how == "malformed" else "invalid")
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        # timezone.now() with USE_TZ on (Keygate's setting), without its settings lookup per request.
        reason = state.inactive_reason(datetime.now(UTC))
        request.auth_decision = AuthDecision(reason or "ok", state.public_id, state.model_patterns)
        if reason is not None:
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        scope = state.ip_refused_by(request.client_ip)
        if scope is not None:
            request.auth_decision = AuthDecision("ip_not_allowed", state.public_id, state.model_patterns)
            holder = "This key" if scope == "key" else "This key's team"
            denied = PermissionDenied(f"{holder} may not be used from {request.client_ip or 'this address'}.")
            denied.extra_headers = [(b"x-keygate-limit-scope", scope.encode())]
            raise denied
        return None, state
