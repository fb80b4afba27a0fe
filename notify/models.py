"""The notification outbox: what happened (:class:`Event`), to whom and how it is delivered
(:class:`Delivery`), where webhooks go (:class:`WebhookEndpoint`), what each user wants
(:class:`Preference`). Written in the same transaction as the change they announce, delivered
later by ``python manage.py notify run`` — never on the request path (docs/architecture.md)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    """Event types, named as Standard Webhooks suggests (``group.event``)."""

    KEY_CREATED = "key.created", _("key created")
    KEY_ROTATED = "key.rotated", _("key rotated")
    KEY_REVOKED = "key.revoked", _("key revoked")
    KEY_LEAKED = "key.leaked", _("key revoked: leaked")
    KEY_EXPIRING = "key.expiring", _("key expiring")
    KEY_EXPIRED = "key.expired", _("key expired")
    BUDGET_WARNING = "key.budget_80", _("budget 80 percent spent")
    BUDGET_SPENT = "key.budget_100", _("budget spent")
    TEAM_BUDGET_WARNING = "team.budget_80", _("team budget 80 percent spent")
    TEAM_BUDGET_SPENT = "team.budget_100", _("team budget spent")
    PROVIDER_DOWN = "provider.breaker_opened", _("upstream failing: circuit breaker opened")
    PROVIDER_UP = "provider.breaker_closed", _("upstream recovered: circuit breaker closed")


def new_message_id() -> str:
    """``msg_`` + 24 random characters: the ``webhook-id`` receivers deduplicate on."""
    return "msg_" + secrets.token_urlsafe(18)


class Event(models.Model):
    """One thing that happened, once. ``dedupe_key`` makes the scans idempotent: a key crossing
    its 7-day mark is one event however many times the worker scans."""

    message_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    key = models.ForeignKey("keys.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(_("data"), default=dict)
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    class Meta:
        verbose_name = _("notification event")
        verbose_name_plural = _("notification events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class WebhookEndpoint(models.Model):
    """Where webhooks go. With an owner: events about that user's keys; without: every event
    (an operator's endpoint). Deliveries are signed with ``secret`` per Standard Webhooks."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        help_text=_("Empty: receives every event (operators)."),
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    kinds = models.JSONField(_("events"), default=list, blank=True, help_text=_("Empty: every event."))
    # Fernet-encrypted (notify.signing.seal): the database alone cannot forge deliveries.
    secret_encrypted = models.TextField(default="", editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url

    def save(self, *args: object, **kwargs: object) -> None:
        from notify import signing

        if not self.secret_encrypted:
            self.secret_encrypted = signing.seal(signing.new_secret())
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def secret(self) -> str:
        """The signing secret (``whsec_…``) the receiver verifies with."""
        from notify import signing

        return signing.unseal(self.secret_encrypted)

    def wants(self, kind: str) -> bool:
        return self.is_active and (not self.kinds or kind in self.kinds)


class Preference(models.Model):
    """A user's choices: the kinds they do not want by email, and the language of their emails."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    muted_kinds = models.JSONField(_("muted events"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=16, choices=settings.LANGUAGES, default="en")

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)


class Delivery(models.Model):
    """One event to one recipient over one channel; retried with backoff until sent or given up."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("email")
        WEBHOOK = "webhook", _("webhook")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")  # gave up after the last retry

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now, db_index=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "user"], name="notify_one_email_per_user"),
            models.UniqueConstraint(fields=["event", "endpoint"], name="notify_one_post_per_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.user or self.endpoint} ({self.status})"
