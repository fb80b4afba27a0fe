"""The gateway's ASGI application: the proxy hot path, mounted at /v1/ by config/asgi.py.

Per request: match the endpoint → authenticate (cache; argon2 only on a key's first use in
this process, in a worker thread) → permission classes → read and check the body → route →
throttles → forward. A warm key costs no DB query and no thread hop. Errors are rendered in the
endpoint's dialect with the request id; nothing unexpected ever reaches the client as a stack
trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway import bookkeeping, config_file, fanout, metrics, views
from gateway.authentication import FailureCounter, KeyAuthentication
from gateway.cache import KeyCache
from gateway.cors import CORS
from gateway.exceptions import (
    APIException,
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    UpstreamError,
)
from gateway.http import (
    ClientDisconnected,
    GatewayRequest,
    Receive,
    Scope,
    Send,
    base_headers,
    new_request_id,
    parse_json_object,
    read_body,
    require_model,
)
from gateway.limits import Admission, KeyLimitsThrottle, budget_spent
from gateway.limitstore import MemoryLimitStore, RedisLimitStore
from gateway.logfmt import AccessLog
from gateway.permissions import IsInferenceKey, ModelInScope
from gateway.providers import adapter
from gateway.proxy import Forwarder, Outcome
from gateway.routing import RoutingTable, load_table, sync_env_providers
from gateway.usage import UsageWriter
from gateway.wire import Response

log = logging.getLogger("keygate.gateway")
access_log = logging.getLogger("keygate.access")


class GatewayApp:
    """One per process. ``startup()``/``shutdown()`` run from the ASGI lifespan."""

    # DRF permission classes: on the key (before the body is read), then on the request.
    key_permission_classes = (IsInferenceKey,)
    request_permission_classes = (ModelInScope,)

    def __init__(self) -> None:
        self.cache = KeyCache(
            pepper=settings.KEYGATE_PEPPER.encode(),
            prefix=settings.KEYGATE_KEY_PREFIX,
            state_ttl=settings.KEYGATE_STATE_TTL,
            negative_ttl=settings.KEYGATE_NEGATIVE_TTL,
        )
        self.authenticator = KeyAuthentication(
            self.cache, FailureCounter(limit=settings.KEYGATE_AUTH_FAILURES_PER_MINUTE)
        )
        self.key_permissions = [cls() for cls in self.key_permission_classes]
        self.request_permissions = [cls() for cls in self.request_permission_classes]
        self.forwarder = Forwarder(max_response_bytes=settings.KEYGATE_MAX_RESPONSE_BYTES)
        self.usage = UsageWriter()
        if settings.REDIS_URL:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
            store: Any = RedisLimitStore(client, on_error=metrics.LIMIT_BACKEND_ERRORS.inc)
        else:
            store = MemoryLimitStore()
        self.throttle = KeyLimitsThrottle(store, lambda: self.table, self._budget_spent)
        self.table = RoutingTable(routes=[], prices=[])
        self.max_body = settings.KEYGATE_MAX_BODY_BYTES
        self.started_at = int(time.time())
        self._routes_dirty = False
        self._background: list[asyncio.Task[None]] = []
        self.access: AccessLog | None = None
        self.cors = CORS(settings.KEYGATE_CORS_ORIGINS)
        self.discovered: dict[int, tuple[str, ...]] = {}

    # --- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        from gateway import signals

        # The declarative file first (a ConfigError stops start-up), then the environment's providers.
        await sync_to_async(config_file.apply_configured, thread_sensitive=False)()
        await sync_to_async(sync_env_providers, thread_sensitive=False)()
        self.table = await self._load_table()
        signals.connect(self)
        await self.forwarder.start()
        self.usage.start()
        self.access = AccessLog() if access_log.isEnabledFor(logging.INFO) else None
        if self.access is not None:
            self.access.start()
        loop = asyncio.get_running_loop()
        self._background.append(loop.create_task(self._refresh_routes()))
        self._background.append(loop.create_task(metrics.flush_every(1.0)))
        if settings.REDIS_URL:
            self._background.append(loop.create_task(fanout.subscribe(self.cache.drop, self.routes_changed)))
        if settings.KEYGATE_UPSTREAM_MODELS_REFRESH > 0:
            self._background.append(loop.create_task(self._refresh_upstream_models()))

    async def _load_table(self) -> RoutingTable:
        table = await sync_to_async(load_table, thread_sensitive=False)()
        table.discovered = self.discovered
        return table

    async def discover_upstream_models(self) -> None:
        """Fetch the model list of every upstream behind a catch-all route the operator listed no
        models for (what /v1/models shows for it). Failures are logged; the last list stays."""
        upstreams = {r.upstream.id: r.upstream for r in self.table.routes if "*" in r.pattern and not r.listed_models}
        for upstream in upstreams.values():
            try:
                names = await adapter(upstream.kind).list_models(self.forwarder.session, upstream)
            except UpstreamError as error:
                log.warning("listing the models of provider %r failed: %s", upstream.name, error.detail)
                continue
            if names:
                self.discovered[upstream.id] = names

    async def _refresh_upstream_models(self) -> None:
        """Never on the request path: in the background, soon after start and then every
        ``KEYGATE_UPSTREAM_MODELS_REFRESH`` seconds."""
        while True:
            try:
                await self.discover_upstream_models()
            except Exception:
                log.exception("listing upstream models failed")
            await asyncio.sleep(settings.KEYGATE_UPSTREAM_MODELS_REFRESH)

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        metrics.flush()
        await self.usage.close()
        await self.forwarder.close()
        self.cache.close()
        if self.access is not None:
            self.access.close()

    async def _budget_spent(self, holder_id: int, since: Any, kind: str = "key") -> tuple[int, float]:
        return await sync_to_async(budget_spent, thread_sensitive=False)(holder_id, since, kind)

    def routes_changed(self) -> None:
        """Called (from any thread) when providers, routes or prices change in this process."""
        self._routes_dirty = True

    async def _refresh_routes(self) -> None:
        interval = settings.KEYGATE_ROUTES_REFRESH
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            if self._routes_dirty or time.monotonic() - last >= interval:
                self._routes_dirty = False
                last = time.monotonic()
                try:
                    self.table = await self._load_table()
                except Exception:
                    log.exception("reloading routes failed; keeping the previous table")

    # --- requests --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = views.match(scope["path"])
        request = GatewayRequest.from_scope(scope, views.dialect_of(scope, endpoint), endpoint.name if endpoint else "")
        outcome = Outcome()
        admission: Admission | None = None
        if request.debug_auth:
            send = _with_debug_headers(request, send)
        if self.cors.enabled and self.cors.allowed(origin := request.headers.get("origin")):
            if request.method == "OPTIONS":
                requested = request.headers.get("access-control-request-headers")
                await self.cors.preflight(origin, requested).send(send)
                outcome.status = 204
                self._log_unrecorded(request, outcome)
                return
            send = self.cors.wrap(origin, send)
        try:
            if endpoint is None:
                raise NotFound(views.not_found_message(scope))
            if request.method not in endpoint.methods:
                raise MethodNotAllowed(request.method, endpoint.methods)
            if endpoint.requires_anthropic_version and not request.headers.get("anthropic-version"):
                raise BadRequest("anthropic-version: header is required.")
            await self._authorize(request)
            if not endpoint.proxied:
                await views.answer_models(request, self.table, send, self.started_at)
                outcome.status = 200
                return
            await self._prepare(request, receive)
            route = self.table.resolve(request.model)
            if route is None:
                raise ModelNotFound(request.model)
            outcome.provider = route.upstream.name
            plan = self.forwarder.plan(request, route)  # one per deployment that can serve it
            admission = await self.throttle.admit(request)
            if admission is not None:
                request.extra_headers = admission.headers
            if request.stream:
                await self._forward(request, route, plan, receive, send, outcome)
            else:
                # No disconnect watcher for a non-streamed request: its answer is one write at the end,
                # and the extra task per request cost ~10 % of throughput.
                await self.forwarder.forward(request, route, send, outcome, plan)
        except ClientDisconnected:
            outcome.aborted = True
            return
        except APIException as drf_error:
            error = GatewayError.adopt(drf_error)
            outcome.status = error.status_code
            outcome.error_type = error.reason
            _count_refusal(error)
            await self._send_error(request, send, error)
        except Exception:
            log.exception(
                "unexpected error handling %s %s (request %s)", request.method, request.path, request.request_id
            )
            outcome.status, outcome.error_type = 500, "internal_error"
            error = APIException("Keygate hit an internal error. The request id identifies it in the logs.")
            await self._send_error(request, send, error)
        finally:
            if request.auth is not None and endpoint is not None and endpoint.proxied and request.model is not None:
                tokens, cost = self._record(request, outcome)
                if admission is not None:
                    await self.throttle.settle(admission, tokens=tokens, cost=cost)
            else:
                self._log_unrecorded(request, outcome)

    async def _authorize(self, request: GatewayRequest) -> None:
        try:
            _, request.auth = await self.authenticator.aauthenticate(request)
        except APIException:
            reason = request.auth_decision.status if request.auth_decision else "error"
            metrics.child(metrics.AUTH_FAILURES, reason).inc()
            raise
        _check(self.key_permissions, request, self)

    async def _prepare(self, request: GatewayRequest, receive: Receive) -> None:
        request.body = await read_body(request, receive, self.max_body)
        request.json = parse_json_object(request.body)
        request.model = require_model(request.json)
        stream = request.json.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest("The 'stream' parameter must be a boolean.", param="stream")
        request.stream = stream
        _check(self.request_permissions, request, self)

    async def _forward(
        self, request: GatewayRequest, route: Any, plan: Any, receive: Receive, send: Send, outcome: Outcome
    ) -> None:
        """Forward in this task while a watcher cancels it if the client disconnects first
        (which closes the upstream request). One extra task per request, no ``asyncio.wait``."""
        this = asyncio.current_task()
        watcher = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, this, outcome))
        completed = False
        try:
            await self.forwarder.forward(request, route, send, outcome, plan)
            completed = True
        except asyncio.CancelledError:
            if not outcome.aborted:
                raise  # cancelled for another reason (shutdown): not ours to swallow
            this.uncancel()
        finally:
            watcher.cancel()
        if outcome.aborted:
            if this.cancelling():  # the disconnect raced the forward's last step: absorb its cancel
                this.uncancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0)
            if completed or outcome.delivered:
                # The whole answer was sent before the client hung up (a client closes as soon as it
                # has read the last event, maybe before the upstream has closed its side): a
                # finished stream, not an aborted one.
                outcome.aborted = False
            else:
                outcome.error_type = outcome.error_type or "client_disconnected"

    async def _send_error(self, request: GatewayRequest, send: Send, error: APIException) -> None:
        try:
            await Response.error(request.dialect, error, request.request_id, base_headers(request)).send(send)
        except Exception:  # the response had already started (mid-stream failure): nothing more to send
            log.debug("could not send error response for %s", request.request_id)

    def _record(self, request: GatewayRequest, outcome: Outcome) -> tuple[int, Decimal]:
        """Queue the usage record, count metrics, log the access line. Returns the tokens and cost charged."""
        return bookkeeping.record(request, outcome, self.table, self.usage, self.access)

    def _log_unrecorded(self, request: GatewayRequest, outcome: Outcome) -> None:
        bookkeeping.log_unrecorded(request, outcome, self.access)


def _count_refusal(error: GatewayError) -> None:
    if error.status_code == 429:
        metrics.child(metrics.LIMIT_REFUSALS, error.limit or "other").inc()


def _check(permissions: list[Any], request: GatewayRequest, view: Any) -> None:
    for permission in permissions:
        if not permission.has_permission(request, view):
            raise PermissionDenied(permission.message, getattr(permission, "code", None))


def _with_debug_headers(request: GatewayRequest, send: Send) -> Send:
    """Wrap ``send`` to add the X-Debug-Auth explanation to a successful response's headers."""

    async def debug_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and request.auth_decision is not None:
            message = {**message, "headers": [*message["headers"], *request.auth_decision.headers()]}
        await send(message)

    return debug_send


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any], outcome: Outcome) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            outcome.aborted = True
            task.cancel()
            return


__all__ = ["GatewayApp", "UpstreamError", "new_request_id"]
