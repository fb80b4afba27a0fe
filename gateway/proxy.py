"""Forwarding one authorised request to its route's deployments, and the answer back.

The boundary between the pipeline and the provider adapters (:mod:`gateway.providers`):

- :meth:`Forwarder.plan` decides, before any limit is taken, how a request reaches each of its
  route's deployments: **pass-through** when the provider speaks the client's endpoint natively,
  else **translated** through :mod:`gateway.translate` (OpenAI Chat ⇄ Anthropic Messages ⇄
  Responses). A deployment that can do neither is left out; when none is left, a 400 names the
  endpoint to use.
- :meth:`Forwarder.forward` tries deployments in the order :class:`gateway.router.Router` picks
  (priority, weight, circuit breakers), **before the first byte only** (issue #12): a connect
  error, a timeout before the first byte, a status in the route's ``retry_on`` (429, 500, 502,
  503, 504, 529 by default), a redirect, or 401/403 (Keygate's credential for that deployment
  refused) counts against the deployment's breaker and moves the request on — at most
  ``max_attempts`` deployments, never one twice, all within the route's deadline. 400, 404, 413
  and 422 say the request itself is wrong: returned at once. Once the answer starts, nothing is
  retried (:mod:`gateway.relay` ends a broken stream with an error event). When every attempt
  failed, the client gets the last failure, as a single upstream would have given it.
- Every forwarded response carries ``x-keygate-provider`` (the deployment that answered) and
  ``x-keygate-attempts``. Limits were admitted once, before all this; a failed attempt costs
  nothing; the request is priced at the deployment that answered.
- The client's credential never goes upstream; the provider's is injected. Redirects are not
  followed. The URL comes from the deployment's provider only. A client disconnect cancels the
  task running this code, which closes the upstream connection.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from gateway import metrics, translate
from gateway.breaker import BreakerBoard, process_board
from gateway.deadlines import deadline
from gateway.exceptions import BadRequest, GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.http import GatewayRequest, Send, base_headers
from gateway.plans import Plan, Plans, plan_route
from gateway.providers.base import UpstreamReply
from gateway.relay import Outcome, _with_stream_usage, prepare_body, relay, relay_translated
from gateway.router import Router
from gateway.routing import Deployment, RouteEntry
from gateway.wire import Response

# Upstream answers that are the deployment's failure whatever the route says: Keygate's
# credential refused, or a redirect (Keygate never follows one: a misconfigured base URL).
_ALWAYS_FAILED = frozenset({401, 403, 301, 302, 303, 307, 308})


@dataclass(slots=True)
class _Opened:
    """An attempt that reached an upstream and got its status back (nothing sent to the client)."""

    deployment: Deployment
    plan: Plan
    reply: UpstreamReply
    drop_injected_usage: bool


class _Buffered(UpstreamReply):
    """A reply whose whole body was read already (``read`` returns it)."""

    def __init__(self, reply: UpstreamReply, body: bytes) -> None:
        self._reply, self._body = reply, body
        self.status, self.headers = reply.status, reply.headers

    async def read(self, limit: int) -> bytes:
        return self._body

    def close(self) -> None:
        self._reply.close()


def _close(opened: _Opened | None) -> None:
    if opened is not None:
        opened.reply.close()


class Forwarder:
    """One per process: owns the pooled upstream client and the router (with its breakers)."""

    def __init__(self, *, max_response_bytes: int, connections: int = 2048, router: Router | None = None) -> None:
        self.max_response_bytes = max_response_bytes
        self._connections = connections
        self.session: aiohttp.ClientSession | None = None
        self.router = router or Router(process_board(), random.Random(settings.KEYGATE_ROUTER_SEED or None))
        self._sync: Any = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=30,
            enable_cleanup_closed=True,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            # No cookies: one session serves every key, and a cookie an upstream set on one
            # request (api.openai.com's Cloudflare ones, on every answer) went out on everyone's,
            # after a jar lookup per request and a Set-Cookie parse per answer.
            cookie_jar=aiohttp.DummyCookieJar(),
            # No skip_auto_headers: every request sets its own user-agent, accept and
            # accept-encoding (build_request), so aiohttp adds none; skipping one cost a
            # CIMultiDict and a header copy per request (~5 % of the loop in py-spy, #16).
            timeout=aiohttp.ClientTimeout(total=None),
            read_bufsize=2**16,
        )
        from gateway import breaker_sync

        self._sync = breaker_sync.start(self.router)

    async def close(self) -> None:
        if self._sync is not None:
            await self._sync.stop()
        if self.session is not None:
            await self.session.close()

    # --- the adapter boundary ----------------------------------------------------------------

    def plan(self, request: GatewayRequest, route: RouteEntry) -> Plans:
        """How ``request`` reaches each deployment of ``route`` that can serve it, or a 400 when
        none can (decided before any limit is taken): :func:`gateway.plans.plan_route`."""
        return plan_route(request, route)

    # --- attempts ------------------------------------------------------------------------------

    async def forward(
        self, request: GatewayRequest, route: RouteEntry, send: Send, outcome: Outcome, plans: Plans | None = None
    ) -> None:
        plans = plans if plans is not None else self.plan(request, route)
        board, policy = self.router.board, route.policy
        if request.endpoint == "messages/count_tokens":
            first = next(iter(plans))
            if plans[first].translated:  # counted here: no upstream of another protocol counts tokens
                await self._count_tokens(request, route, first, plans[first], send, outcome)
                return
        cutoff = request.started + policy.deadline if policy.deadline else None
        tried: set[str] = set()
        failure: GatewayError | None = None  # the last failure that left nothing to relay
        held: _Opened | None = None  # the last failed answer: relayed if no attempt does better
        repeated = False
        try:
            while outcome.attempts < policy.max_attempts:
                if cutoff is not None and time.perf_counter() >= cutoff:
                    failure = failure if held else _deadline_passed()
                    break
                if len(route.deployments) == 1:
                    deployment = self.router.only(route, tried, plans)
                else:
                    deployment = await self.router.next(route, tried, plans)
                if deployment is None:
                    wait = None if repeated or held is None else _retry_after(held.reply, policy.retry_after_cap)
                    if wait is None or (cutoff is not None and time.perf_counter() + wait >= cutoff):
                        break
                    repeated, deployment = True, held.deployment
                    await asyncio.sleep(wait)
                if outcome.attempts:
                    metrics.child(metrics.FALLBACKS, outcome.provider_key).inc()
                outcome.attempts += 1
                outcome.provider, outcome.provider_key = deployment.upstream.name, deployment.key
                tried.add(deployment.key)
                try:
                    opened = await self._open(request, deployment, plans[deployment.key], cutoff)
                except BadRequest as error:  # the request cannot be translated for this deployment
                    board.release(deployment.key)
                    metrics.child(metrics.ATTEMPTS, deployment.key, "untranslatable").inc()
                    failure = (failure or error) if held is None else failure
                    continue
                except UpstreamError as error:
                    _count_failure(board, deployment, error)
                    failure, held = error, _close(held)
                    if error.kind == "route_deadline":
                        break
                    continue
                except BaseException:
                    board.release(deployment.key)
                    raise
                status = opened.reply.status
                if status in policy.retry_on or status in _ALWAYS_FAILED:
                    board.failure(deployment.key, f"upstream_{status}")
                    metrics.child(metrics.ATTEMPTS, deployment.key, "failed").inc()
                    _close(held)
                    held, failure = opened, None
                    continue
                if not opened.reply.content_type.startswith("text/event-stream"):
                    # A whole answer is read before anything is sent, so an upstream that dies
                    # mid-body is still a failure this request can move on from.
                    try:
                        if cutoff is None:
                            opened.reply = _Buffered(opened.reply, await opened.reply.read(self.max_response_bytes))
                        else:
                            opened.reply = await self._buffered(opened.reply, deployment, cutoff)
                    except UpstreamError as error:
                        opened.reply.close()
                        if error.kind == "upstream_too_large":
                            board.release(deployment.key)
                            raise  # another deployment's answer would be as large
                        _count_failure(board, deployment, error)
                        failure, held = error, _close(held)
                        continue
                    except BaseException:
                        opened.reply.close()
                        board.release(deployment.key)
                        raise
                board.success(deployment.key)
                metrics.count(metrics.child(metrics.ATTEMPTS, deployment.key, "answered"))
                _close(held)
                held = None
                outcome.ttfb = time.perf_counter() - request.started
                await self._commit(request, opened, send, outcome)
                if outcome.streamed and outcome.error_type.startswith("upstream"):
                    board.failure(deployment.key, outcome.error_type)  # it broke mid-stream
                return
            if held is not None:
                opened, held = held, None
                await self._commit(request, opened, send, outcome)  # the last failure, as the upstream said it
                return
            self._announce(request, outcome)
            raise failure or UpstreamUnavailable(
                "No deployment of this model's route is available.", kind="upstream_unavailable"
            )
        finally:
            _close(held)

    async def _open(self, request: GatewayRequest, deployment: Deployment, plan: Plan, cutoff: float | None) -> _Opened:
        """Send the request to ``deployment`` and wait for its status (bounded by the route's
        deadline as well as the provider's own timeouts)."""
        drop = False
        if plan.translated:
            assert request.json is not None
            try:
                payload = translate.translate_request(
                    request.json, source=translate.Protocol(plan.source), target=translate.Protocol(plan.target)
                )
            except translate.TranslationError as error:
                raise BadRequest(error.message, param=error.param) from None
            payload["model"] = deployment.upstream_name(request.model or "")
            payload, _ = _with_stream_usage(payload, request.stream, plan.endpoint)
            body = orjson.dumps(payload)
        else:
            body, payload, drop = prepare_body(request, deployment)
        upstream = deployment.upstream
        if cutoff is None:
            reply = await plan.provider.open(self.session, upstream, request, plan.endpoint, body, payload)
        else:
            if cutoff - time.perf_counter() <= 0:
                raise _deadline_passed()
            try:
                with deadline(cutoff - time.perf_counter()):
                    reply = await plan.provider.open(self.session, upstream, request, plan.endpoint, body, payload)
            except TimeoutError:
                raise _deadline_passed() from None
        return _Opened(deployment, plan, reply, drop)

    async def _buffered(self, reply: UpstreamReply, deployment: Deployment, cutoff: float | None) -> UpstreamReply:
        try:
            with deadline(cutoff - time.perf_counter()):
                return _Buffered(reply, await reply.read(self.max_response_bytes))
        except TimeoutError:
            raise _deadline_passed() from None

    async def _commit(self, request: GatewayRequest, opened: _Opened, send: Send, outcome: Outcome) -> None:
        """Relay ``opened`` to the client: from here on, nothing is retried."""
        deployment = opened.deployment
        outcome.provider = deployment.upstream.name
        outcome.upstream_model = deployment.upstream_name(request.model or "")
        self._announce(request, outcome)
        try:
            if opened.plan.translated:
                await relay_translated(
                    request,
                    deployment.upstream,
                    opened.plan,
                    opened.reply,
                    send,
                    outcome,
                    self.max_response_bytes,
                )
            else:
                await relay(
                    request,
                    deployment.upstream,
                    opened.reply,
                    send,
                    outcome,
                    opened.drop_injected_usage,
                    self.max_response_bytes,
                )
        finally:
            opened.reply.close()

    @staticmethod
    def _announce(request: GatewayRequest, outcome: Outcome) -> None:
        """``x-keygate-provider`` and ``x-keygate-attempts`` on whatever the client gets next."""
        request.extra_headers = [
            *request.extra_headers,
            (b"x-keygate-provider", outcome.provider.encode()),
            (b"x-keygate-attempts", str(outcome.attempts).encode()),
        ]

    async def _count_tokens(
        self, request: GatewayRequest, route: RouteEntry, key: str, plan: Plan, send: Send, outcome: Outcome
    ) -> None:
        assert request.json is not None
        deployment = next(d for d in route.deployments if d.key == key)
        tokens = translate.count_tokens(request.json, protocol=translate.Protocol(plan.source))
        outcome.status, outcome.attempts, outcome.provider = 200, 1, deployment.upstream.name
        self._announce(request, outcome)
        await Response.json(200, {"input_tokens": tokens}, base_headers(request)).send(send)


def _count_failure(board: BreakerBoard, deployment: Deployment, error: UpstreamError) -> None:
    """An attempt that failed in transport: the deployment's failure, unless the route's own
    deadline cut it (then it had no verdict)."""
    if error.kind == "route_deadline":
        board.release(deployment.key)
    else:
        board.failure(deployment.key, error.kind)
    metrics.child(metrics.ATTEMPTS, deployment.key, "failed").inc()


def _deadline_passed() -> UpstreamTimeout:
    return UpstreamTimeout("No upstream answered within this route's deadline.", kind="route_deadline")


def _retry_after(reply: UpstreamReply, cap: float) -> float | None:
    """The upstream's ``retry-after`` in seconds when it is at most ``cap`` (0: never honoured)."""
    if cap <= 0:
        return None
    value = reply.headers.get("retry-after-ms")
    try:
        seconds = float(value) / 1000 if value else None
    except ValueError:
        seconds = None
    if seconds is None and (value := reply.headers.get("retry-after")):
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
    if seconds is None or seconds < 0 or seconds > cap:
        return None
    return seconds
