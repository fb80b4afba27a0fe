"""Prometheus metrics for operators, served at ``/metrics``.

Protected: the scraper sends ``Authorization: Bearer $KEYGATE_METRICS_TOKEN`` (no token
configured → ``/metrics`` answers 404). With several worker processes, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory so every worker's numbers are aggregated
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import os
from typing import Any

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from gateway.http import Receive, Scope, Send
from gateway.wire import Response

disable_created_metrics()

REQUESTS = Counter(
    "keygate_requests_total", "Proxied requests by endpoint, model and status.", ["endpoint", "model", "status"]
)
LATENCY = Histogram(
    "keygate_request_duration_seconds",
    "Total time of proxied requests.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TTFB = Histogram(
    "keygate_time_to_first_byte_seconds",
    "Time until the upstream's first byte.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter(
    "keygate_upstream_errors_total", "Upstream failures by provider and kind.", ["provider", "kind"]
)
KEY_CACHE = Counter("keygate_key_cache_total", "Key authentications by cache outcome.", ["result"])
LIMIT_REFUSALS = Counter("keygate_limit_refusals_total", "Requests refused by a key limit.", ["limit"])
LIMIT_BACKEND_ERRORS = Counter("keygate_limit_backend_errors_total", "Redis failures while enforcing limits.")
# Failover (issue #12): labels are deployment keys ("provider:model"), bounded by configuration.
ATTEMPTS = Counter(
    "keygate_upstream_attempts_total",
    "Attempts per deployment by result (answered, failed, untranslatable).",
    ["deployment", "result"],
)
FALLBACKS = Counter("keygate_fallbacks_total", "Requests that moved on from a deployment to another.", ["deployment"])
BREAKER_TRANSITIONS = Counter(
    "keygate_breaker_transitions_total",
    "Circuit breaker transitions per deployment, by new state.",
    ["deployment", "state"],
)
AUTH_FAILURES = Counter("keygate_auth_failures_total", "Failed authentications by reason.", ["reason"])


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, cached: ``labels()`` validates and locks on every call, which
    showed up in profiles of the proxy; the cached child is one lock and one add."""
    key = (id(metric), *labels)
    found = _CHILDREN.get(key)
    if found is None:
        if len(_CHILDREN) > 50_000:  # unbounded label values (models) must not grow memory forever
            _CHILDREN.clear()
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


# --- per-request figures, tallied on the event loop and added to the metrics in one go -------
#
# Every proxied request counts itself, observes two histograms and bumps two counters. Through
# prometheus_client that is seven locked additions and two scans of the bucket bounds (~2.3 µs a
# request in a tight loop). Tallied here (plain additions, no lock: only the event loop touches
# the tallies) and added by ``flush()`` (every second, before /metrics answers, at shutdown), the
# same figures cost ~0.4 µs (issue #16). Prometheus scrapes every 15 s or more: a second's delay
# is invisible to it. prometheus_client's own histogram keeps per-bucket counts (``_buckets``)
# and a sum (``_sum``) per child; ``flush()`` adds to those (the version is pinned, and a test
# checks that a flushed histogram reads as observed values would).

_LATENCY_BOUNDS = tuple(LATENCY._upper_bounds)
_TTFB_BOUNDS = tuple(TTFB._upper_bounds)


class _Tally:
    """One (endpoint, model, status)'s requests since the last flush."""

    __slots__ = ("count", "latency", "latency_sum", "ttfb", "ttfb_sum")

    def __init__(self) -> None:
        self.count = 0
        self.latency = [0] * len(_LATENCY_BOUNDS)
        self.latency_sum = 0.0
        self.ttfb = [0] * len(_TTFB_BOUNDS)
        self.ttfb_sum = 0.0


_TALLIES: dict[tuple[str, str, int], _Tally] = {}
_COUNTS: dict[Any, int] = {}  # counter child -> increments since the last flush


def observe_request(endpoint: str, model: str, status: int, seconds: float, ttfb: float | None) -> None:
    """Count a proxied request and observe its duration and time to first byte (at the next flush)."""
    key = (endpoint, model, status)
    tally = _TALLIES.get(key)
    if tally is None:
        tally = _TALLIES[key] = _Tally()
    tally.count += 1
    tally.latency[bisect.bisect_left(_LATENCY_BOUNDS, seconds)] += 1
    tally.latency_sum += seconds
    if ttfb is not None:
        tally.ttfb[bisect.bisect_left(_TTFB_BOUNDS, ttfb)] += 1
        tally.ttfb_sum += ttfb


def count(counter_child: Any) -> None:
    """``counter_child.inc()`` at the next flush (for counters every request bumps)."""
    _COUNTS[counter_child] = _COUNTS.get(counter_child, 0) + 1


def flush() -> None:
    """Add what was tallied since the last flush to the Prometheus metrics. On the event loop."""
    global _TALLIES, _COUNTS
    tallies, _TALLIES = _TALLIES, {}
    counts, _COUNTS = _COUNTS, {}
    for counter_child, increments in counts.items():
        counter_child.inc(increments)
    for (endpoint, model, status), tally in tallies.items():
        child(REQUESTS, endpoint, model, str(status)).inc(tally.count)
        _add(child(LATENCY, endpoint), tally.latency, tally.latency_sum)
        _add(child(TTFB, endpoint), tally.ttfb, tally.ttfb_sum)


def _add(histogram_child: Any, buckets: list[int], total: float) -> None:
    for value, observed in zip(histogram_child._buckets, buckets, strict=True):
        if observed:
            value.inc(observed)
    histogram_child._sum.inc(total)


async def flush_every(seconds: float) -> None:
    """The background task that flushes (started by the gateway app with the process)."""
    while True:
        await asyncio.sleep(seconds)
        flush()


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI handler for ``GET /metrics``."""
    token = settings.KEYGATE_METRICS_TOKEN
    headers = dict(scope["headers"])
    presented = headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ").strip()
    if not token:
        status, body, content_type = 404, b"metrics are disabled: set KEYGATE_METRICS_TOKEN\n", b"text/plain"
    elif not hmac.compare_digest(presented.encode(), token.encode()):
        status, body, content_type = 401, b"unauthorized\n", b"text/plain"
    else:
        flush()  # this process's figures up to this request (other workers': up to a second old)
        status, body, content_type = 200, generate_latest(_registry()), CONTENT_TYPE_LATEST.encode()
    await Response(status, [(b"content-type", content_type), (b"cache-control", b"no-store")], body).send(send)
