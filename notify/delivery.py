"""Delivering the outbox: events fan out into deliveries, deliveries are sent, failures retried.

**At least once.** A delivery is marked sent only after the SMTP server or the webhook receiver
accepted it. Before sending, a worker *claims* it by moving ``next_attempt_at`` forward by
:data:`LEASE` with a conditional UPDATE (so two workers never send the same delivery at once, on
SQLite or PostgreSQL); a worker that dies mid-send leaves the claim to expire and the delivery is
sent again. Receivers deduplicate on ``webhook-id`` (the event's ``message_id``, the same on
every retry).

**Retries** follow :data:`BACKOFF` (about 24 hours in all), then the delivery is ``failed``;
the admin's "Send again" action re-queues it.

**Webhook URLs** are checked against SSRF when sent (the resolved addresses, not the name):
loopback, private, link-local (cloud metadata), multicast and reserved addresses are refused
unless ``KEYGATE_WEBHOOK_ALLOW_PRIVATE=true`` (tests, or a receiver on a private network the
operator trusts). Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from notify import recipients, signing
from notify.models import Delivery, Event, Preference

logger = logging.getLogger("keygate.notify")

BACKOFF = tuple(
    timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 8 * 3600, 8 * 3600)
)  # then give up: ~23.6 h after the first attempt
LEASE = timedelta(minutes=5)
WEBHOOK_TIMEOUT = 10.0


class Undeliverable(Exception):
    """This attempt failed; the message (no secret, no body) is recorded as ``last_error``."""


def fan_out(now: datetime, *, limit: int = 500) -> int:
    """Turn new events into deliveries (one per person by email, one per endpoint); the number of events."""
    events = list(
        Event.objects.select_related("key__owner", "key__minted_by").filter(fanned_out_at__isnull=True)[:limit]
    )
    for event in events:
        with transaction.atomic():
            rows = [
                Delivery(event=event, channel=Delivery.Channel.EMAIL, user=user, next_attempt_at=now)
                for user in recipients.people(event)
            ]
            rows += [
                Delivery(event=event, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint, next_attempt_at=now)
                for endpoint in recipients.endpoints(event)
            ]
            Delivery.objects.bulk_create(rows, ignore_conflicts=True)
            Event.objects.filter(pk=event.pk).update(fanned_out_at=now)
    return len(events)


def deliver_due(now: datetime, *, limit: int = 100) -> dict[str, int]:
    """Send what is due; counts of ``sent``, ``retry`` and ``failed``."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    connection = None
    for pk, planned in due:
        claimed = Delivery.objects.filter(pk=pk, status=Delivery.Status.PENDING, next_attempt_at=planned).update(
            next_attempt_at=now + LEASE
        )
        if not claimed:
            continue  # another worker has it
        delivery = Delivery.objects.select_related("event__key__owner", "user", "endpoint").get(pk=pk)
        try:
            if delivery.channel == Delivery.Channel.EMAIL:
                connection = connection or get_connection(fail_silently=False)
                send_email(delivery, connection=connection)
            else:
                send_webhook(delivery, now=now)
        except Exception as error:  # any failure is a failed attempt, recorded and retried
            counts[_failed(delivery, error, now)] += 1
            if connection is not None and delivery.channel == Delivery.Channel.EMAIL:
                connection.close()  # a broken SMTP session is not reused for the next email
                connection = None
        else:
            Delivery.objects.filter(pk=pk).update(
                status=Delivery.Status.SENT, sent_at=now, attempts=delivery.attempts + 1, last_error=""
            )
            counts["sent"] += 1
    if connection is not None:
        connection.close()
    return counts


def _failed(delivery: Delivery, error: Exception, now: datetime) -> str:
    attempts = delivery.attempts + 1
    message = str(error) if isinstance(error, Undeliverable) else type(error).__name__
    done = attempts > len(BACKOFF)
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts,
        last_error=message[:300],
        status=Delivery.Status.FAILED if done else Delivery.Status.PENDING,
        next_attempt_at=now if done else now + BACKOFF[attempts - 1],
    )
    logger.warning(
        "notification %s to %s: attempt %d failed: %s", delivery.event.message_id, delivery.channel, attempts, message
    )
    return "failed" if done else "retry"


# --- email -----------------------------------------------------------------------------------


def _language(user: Any) -> str:
    pref = Preference.objects.filter(user=user).values_list("language", flat=True).first()
    return pref or settings.LANGUAGE_CODE


def _link(event: Event, key: dict[str, Any]) -> str:
    if key.get("id"):
        return reverse("keys:detail", args=[key["id"]])
    if event.kind.startswith("provider."):
        return reverse("admin:gateway_provider_changelist")  # each deployment's breaker and last error
    return "/"


def render_email(event: Event, user: Any) -> tuple[str, str, str]:
    """``(subject, text, html)`` for ``user``, in their language."""
    from sso.urls_public import public_url

    key = event.data.get("key", {})
    context = {
        "event": event,
        "data": event.data,
        "key": key,
        "user": user,
        "kind": event.kind,
        "preferences": public_url(reverse("notify:preferences")),
        "link": public_url(_link(event, key)),
    }
    with translation.override(_language(user)):
        subject = render_to_string("notify/email_subject.txt", context).strip()
        text = render_to_string("notify/email.txt", context)
        html = render_to_string("notify/email.html", context)
    return " ".join(subject.split()), text, html


def send_email(delivery: Delivery, *, connection: Any) -> None:
    user = delivery.user
    if user is None or not user.email:
        raise Undeliverable("the recipient has no email address")
    subject, text, html = render_email(delivery.event, user)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [user.email], connection=connection)
    message.attach_alternative(html, "text/html")
    message.extra_headers["X-Keygate-Event"] = delivery.event.message_id
    message.send()


# --- webhooks --------------------------------------------------------------------------------


def webhook_body(event: Event) -> str:
    """The JSON every endpoint receives: ``{"type", "timestamp", "data"}`` (Standard Webhooks)."""
    return json.dumps(
        {"type": event.kind, "timestamp": event.created_at.isoformat(), "data": event.data},
        separators=(",", ":"),
        sort_keys=True,
    )


def address_refusal(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None. Resolves the host now (see module docstring)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    if settings.KEYGATE_WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return "the host does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None) or address
        if not mapped.is_global or mapped.is_multicast:
            return f"{mapped} is not a public address"
    return None


def send_webhook(delivery: Delivery, *, now: datetime) -> None:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.is_active:
        raise Undeliverable("the endpoint was removed or turned off")
    refusal = address_refusal(endpoint.url)
    if refusal:
        raise Undeliverable(f"refused: {refusal}")
    body = webhook_body(delivery.event)
    headers = {
        "content-type": "application/json",
        "user-agent": "Keygate-Webhooks/1",
        **signing.signed_headers(endpoint.secret, delivery.event.message_id, now, body),
    }
    try:
        response = requests.post(
            endpoint.url, data=body.encode(), headers=headers, timeout=WEBHOOK_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as error:
        raise Undeliverable(type(error).__name__) from None
    if not 200 <= response.status_code < 300:
        raise Undeliverable(f"HTTP {response.status_code}")
