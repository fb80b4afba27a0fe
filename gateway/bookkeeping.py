"""What a finished proxied request leaves behind: its usage record, its metrics, its access line.

Called once per request from :class:`gateway.asgi.GatewayApp`, on the event loop, after the
answer has gone out. A request that made no usage record (refused before it had a key and a
model, or answered by Keygate itself) gets its access line from :func:`log_unrecorded`.
Nothing here blocks: the usage row is queued for the writer thread
(:class:`gateway.usage.UsageWriter`) and the access line for the next batch
(:class:`gateway.logfmt.AccessLog`). The access line holds the public key id and a masked
model name, never a key.
"""

from __future__ import annotations

import time
from decimal import Decimal

from gateway import metrics
from gateway.http import GatewayRequest
from gateway.logfmt import AccessLog
from gateway.relay import Outcome
from gateway.routing import RoutingTable
from gateway.usage import UsageWriter
from gateway.wire import mask_echo


def record(
    request: GatewayRequest, outcome: Outcome, table: RoutingTable, usage_writer: UsageWriter, access: AccessLog | None
) -> tuple[int, Decimal]:
    """Queue the usage record, count metrics, log the access line. Returns the tokens and cost
    charged (for the limits to settle)."""
    usage = outcome.usage
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    if outcome.aborted and not outcome.saw_usage:
        # The client left before the upstream reported usage: estimate what was consumed
        # (a streamed chunk carries about one token) so limits and budgets still see it.
        input_tokens = input_tokens or -(-len(request.body) // 4)
        output_tokens = output_tokens or max(0, outcome.events - 1)
    elapsed = time.perf_counter() - request.started
    status = outcome.status or (499 if outcome.aborted else 0)
    model = mask_echo(request.model)
    cost = table.cost(request.model, input_tokens, output_tokens, outcome.upstream_model or None)
    routed = outcome.provider != ""
    label = table.metric_label(request.model) if routed else "(unrouted)"
    metrics.observe_request(request.endpoint, label, status, elapsed, outcome.ttfb)
    if outcome.error_type.startswith("upstream"):
        metrics.child(metrics.UPSTREAM_ERRORS, outcome.provider or "-", outcome.error_type).inc()
    if access is not None:
        access.write(
            level="info",
            logger="keygate.access",
            request_id=request.request_id,
            key=request.auth.public_id,
            model=model,
            endpoint=request.endpoint,
            status=status,
            latency_ms=round(elapsed * 1000, 2),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stream=outcome.streamed,
            aborted=outcome.aborted,
            error=outcome.error_type,
        )
    usage_writer.record(
        key_id=request.auth.id,
        endpoint=request.endpoint,
        model=model[:128],
        provider=outcome.provider,
        attempts=outcome.attempts,
        status_code=status,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        latency_ms=round(elapsed * 1000, 3),
        ttfb_ms=round(outcome.ttfb * 1000, 3) if outcome.ttfb is not None else None,
        streamed=outcome.streamed,
        aborted=outcome.aborted,
        error_type=outcome.error_type[:64],
        request_id=request.request_id,
        client_ip=request.client_ip,
    )
    return input_tokens + output_tokens, cost


def log_unrecorded(request: GatewayRequest, outcome: Outcome, access: AccessLog | None) -> None:
    """The access line of a request that made no usage record: refused before it had a key
    and a model (401, 404, 405, 400, 413), or answered by Keygate itself (/v1/models)."""
    if access is None:
        return
    access.write(
        level="info",
        logger="keygate.access",
        request_id=request.request_id,
        key=request.auth.public_id if request.auth is not None else None,
        method=request.method,
        path=mask_echo(request.path)[:256],
        endpoint=request.endpoint or None,
        status=outcome.status or (499 if outcome.aborted else 0),
        latency_ms=round((time.perf_counter() - request.started) * 1000, 2),
        error=outcome.error_type,
    )
