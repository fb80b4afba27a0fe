"""``/security/``: where leaked keys are reported, by GitHub and by anyone.

- ``POST /security/secret-scanning/github`` — GitHub's secret-scanning partner batches
  (ECDSA-signed); answers GitHub's feedback array.
- ``POST /security/secret-scanning/github-alerts`` — ``secret_scanning_alert`` organisation
  webhooks (HMAC-signed); the secret is read back from GitHub's API.
- ``POST /security/report-leak`` — ``{"keys": [...]}`` from anyone, no authentication; always
  ``202`` with an empty body, the work done off the response path (no oracle).

All three feed :func:`keys.leaks.revoke_leaked`. The callers are machines that carry no CSRF
token, hence ``csrf_exempt``; each request is authenticated by its signature instead (or, for
the report endpoint, needs none: it can only revoke a key whose whole secret it presents).
Bad input is a 4xx JSON answer with an ``error`` field, never a 500.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from keys import leaks, secret_scanning
from keys.leaks import Finding, Verdict
from keys.views.common import client_ip

logger = logging.getLogger("keygate.security")

VIA_PARTNER = "secret scanning"
VIA_ALERT = "secret scanning"
VIA_REPORT = "leak report"
MAX_PARTNER_TOKENS = 1000
# GitHub allows a partner endpoint about 10 s. A batch of many *live* keys costs one argon2id
# verify each (~36 ms, two cores): what is not verified within this budget is finished in the
# background (and left out of the feedback), so the answer always comes in time.
PARTNER_VERIFY_BUDGET = 7.0
MAX_REPORT_KEYS = 100
MAX_FIELD_LENGTH = 4096
ALERT_ACTIONS = frozenset({"created", "reopened", "publicly_leaked"})
REPORT_WINDOW = 60  # seconds
MAX_PENDING_REPORTS = 64


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _post_json(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """CSRF-exempt, POST only (405 JSON otherwise), body bounded (413) before it is read."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return _error(405, "use POST", Allow="POST")
        limit = settings.KEYGATE_SECURITY_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "invalid Content-Length")
        if declared > limit:
            return _error(413, f"the body is larger than {limit} bytes")
        if len(request.body) > limit:
            return _error(413, f"the body is larger than {limit} bytes")
        return view(request)

    return wrapper


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _INVALID


_INVALID = object()


def _text(item: dict[str, Any], name: str) -> str | None:
    """An optional string field (None when present but not a bounded string)."""
    value = item.get(name, "")
    return value if isinstance(value, str) and len(value) <= MAX_FIELD_LENGTH else None


# --- GitHub partner program -------------------------------------------------------------


@_post_json
def github_partner(request: HttpRequest) -> HttpResponse:
    """A signed batch of tokens GitHub found in public; revoke ours, answer the feedback array.

    401 for a missing, malformed or wrong signature or an identifier GitHub does not publish
    (nothing is parsed or changed); 503 when GitHub's key list cannot be fetched (GitHub retries).
    """
    body = request.body
    identifier = request.headers.get("Github-Public-Key-Identifier", "")
    signature = request.headers.get("Github-Public-Key-Signature", "")
    try:
        genuine = secret_scanning.verify_partner_signature(
            body, identifier, signature, keys_url=settings.KEYGATE_GITHUB_SCANNING_KEYS_URL
        )
    except secret_scanning.SigningKeysUnavailable:
        return _error(503, "GitHub's signing keys are unavailable; try again later", **{"Retry-After": "30"})
    if not genuine:
        return _error(401, "missing or invalid Github-Public-Key-Signature")

    items = _load(body)
    if not isinstance(items, list):
        return _error(400, "the body must be a JSON array of {token, type, url, source}")
    if len(items) > MAX_PARTNER_TOKENS:
        return _error(413, f"at most {MAX_PARTNER_TOKENS} tokens per batch")
    findings: list[Finding] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            return _error(400, f"item {index}: a token (string) is required")
        fields = {name: _text(item, name) for name in ("type", "url", "source")}
        if None in fields.values() or len(item["token"]) > MAX_FIELD_LENGTH:
            return _error(400, f"item {index}: type, url and source must be strings")
        findings.append(Finding(item["token"], url=fields["url"] or "", source=fields["source"] or ""))

    ip = client_ip(request)
    verdicts = leaks.revoke_leaked(findings, via=VIA_PARTNER, ip=ip, budget=PARTNER_VERIFY_BUDGET)
    undecided = [f for f, verdict in zip(findings, verdicts, strict=True) if verdict is Verdict.UNDECIDED]
    if undecided and not _in_background(undecided, via=VIA_PARTNER, ip=ip):
        return _error(503, "too much work is waiting; send the batch again later", **{"Retry-After": "30"})
    feedback = [  # optional for GitHub: a token still being checked is left out
        {
            "token_hash": secret_scanning.token_hash(item["token"]),
            "token_type": item.get("type", ""),
            "label": "true_positive" if verdict.is_ours else "false_positive",
        }
        for item, verdict in zip(items, verdicts, strict=True)
        if verdict is not Verdict.UNDECIDED
    ]
    revoked = sum(verdict is Verdict.REVOKED for verdict in verdicts)
    if revoked:
        logger.warning("secret scanning: %d leaked key(s) revoked", revoked)
    return JsonResponse(feedback, safe=False)


# --- GitHub organisation alerts ---------------------------------------------------------


@_post_json
def github_alert(request: HttpRequest) -> HttpResponse:
    """A ``secret_scanning_alert`` webhook: read the alert's secret from GitHub, revoke it if ours.

    404 when no webhook secret is configured; 401 for a bad ``X-Hub-Signature-256``; 202 for
    events and actions that need nothing; 502 when the alert cannot be read from GitHub.
    """
    secret = settings.KEYGATE_GITHUB_WEBHOOK_SECRET
    if not secret:
        return _error(404, "GitHub alert webhooks are not configured (KEYGATE_GITHUB_WEBHOOK_SECRET)")
    if not secret_scanning.verify_webhook_signature(
        request.body, request.headers.get("X-Hub-Signature-256", ""), secret
    ):
        return _error(401, "missing or invalid X-Hub-Signature-256")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return JsonResponse({"ok": True})
    payload = _load(request.body)
    if not isinstance(payload, dict):
        return _error(400, "the body must be a JSON object")
    action = payload.get("action")
    if event != "secret_scanning_alert" or action not in ALERT_ACTIONS:
        return JsonResponse({"ignored": f"{event} {action}" if isinstance(action, str) else event}, status=202)
    ref = secret_scanning.AlertRef.from_payload(payload)
    if ref is None:
        return _error(400, "repository.full_name and alert.number are required")
    if not settings.KEYGATE_GITHUB_TOKEN:
        return _error(502, "KEYGATE_GITHUB_TOKEN is not configured: the alert cannot be read")
    try:
        alert = secret_scanning.fetch_alert_secret(
            ref, api_base=settings.KEYGATE_GITHUB_API_URL, token=settings.KEYGATE_GITHUB_TOKEN
        )
    except secret_scanning.AlertFetchFailed:
        return _error(502, "the alert could not be read from GitHub's API")
    finding = Finding(alert.secret, url=alert.html_url, source=f"github alert {ref.repository}#{ref.number}")
    (verdict,) = leaks.revoke_leaked([finding], via=VIA_ALERT, ip=client_ip(request))
    return JsonResponse({"result": verdict.value})


# --- public reports ---------------------------------------------------------------------
#
# No oracle: whatever the keys are, the answer is the same 202 with an empty body, sent before
# any database work — the reported keys are handed to one background thread. The response
# path costs the same for a hit and a miss: a rate-limit count, a JSON parse, a queue put.

_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leak-background")
_pending = threading.BoundedSemaphore(MAX_PENDING_REPORTS)
_pending_count = 0
_pending_lock = threading.Lock()


def pending_reports() -> int:
    """Reports (and undecided parts of GitHub batches) accepted but not yet processed."""
    return _pending_count


def _count_report(address: str) -> int:
    """Count this request against its address's minute; the count including it."""
    slot = f"keygate:leak-reports:{address}:{int(time.time()) // REPORT_WINDOW}"
    if cache.add(slot, 1, timeout=REPORT_WINDOW * 2):
        return 1
    try:
        return cache.incr(slot)
    except ValueError:  # expired between add and incr
        cache.add(slot, 1, timeout=REPORT_WINDOW * 2)
        return 1


def _in_background(findings: list[Finding], *, via: str, ip: str | None) -> bool:
    """Hand ``findings`` to the background thread; False (nothing queued) when it is full."""
    global _pending_count
    if not _pending.acquire(blocking=False):
        return False
    with _pending_lock:
        _pending_count += 1
    _background.submit(_process, findings, via, ip)
    return True


def _process(findings: list[Finding], via: str, ip: str | None) -> None:
    global _pending_count
    try:
        leaks.revoke_leaked(findings, via=via, ip=ip)
    except Exception:
        logger.exception("leaked keys could not be processed")
    finally:
        # Reports are rare (and each costs argon2 far above a reconnect): the thread keeps no
        # database connection between them (on PostgreSQL an idle one held a server slot for good).
        connection.close()
        with _pending_lock:
            _pending_count -= 1
        _pending.release()


@_post_json
def report_leak(request: HttpRequest) -> HttpResponse:
    """``{"keys": [1-100 strings]}`` → 202, empty body, whatever they are; live ones get revoked.

    400 for a body of the wrong shape; 429 past ``KEYGATE_LEAK_REPORTS_PER_MINUTE`` reports from
    one address (counted before anything else); 503 when too many reports are queued.
    """
    address = client_ip(request) or "-"
    limit = settings.KEYGATE_LEAK_REPORTS_PER_MINUTE
    if limit and _count_report(address) > limit:
        return _error(429, "too many reports from this address; try again in a minute", **{"Retry-After": "60"})
    payload = _load(request.body)
    keys = payload.get("keys") if isinstance(payload, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_REPORT_KEYS:
        return _error(400, f'send {{"keys": [...]}} with 1 to {MAX_REPORT_KEYS} keys')
    if not all(isinstance(key, str) and len(key) <= MAX_FIELD_LENGTH for key in keys):
        return _error(400, "every key must be a string")
    if not _in_background([Finding(key, source="report") for key in keys], via=VIA_REPORT, ip=client_ip(request)):
        return _error(503, "too many reports are waiting; try again shortly", **{"Retry-After": "10"})
    return HttpResponse(status=202)
