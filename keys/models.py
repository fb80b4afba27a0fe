"""The key store: API keys and their audit trail. Data and small properties only; every write
goes through :mod:`keys.services`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keys import crypto
from keys.constants import EXPIRING_SOON, KeyStatus, TeamRole
from keys.limits import Limits, patterns_allow


class LimitFields(models.Model):
    """The optional limits a key and a team both carry, declared once (``keys.limits.LIMIT_FIELDS``
    names them for every surface; ``keys.limits.Limits`` is their value in memory). All are
    enforced by the gateway; on a key in a team, the key's and the team's must both pass."""

    rpm_limit = models.PositiveIntegerField(_("requests per minute"), null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(_("tokens per minute"), null=True, blank=True)
    max_parallel = models.PositiveIntegerField(_("max parallel requests"), null=True, blank=True)
    budget_tokens = models.PositiveBigIntegerField(_("token budget"), null=True, blank=True)
    budget_usd = models.DecimalField(_("cost budget (USD)"), max_digits=12, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(_("budget period"), max_length=8, blank=True, default="")
    allowed_ips = models.JSONField(_("allowed client IPs"), default=list, blank=True)

    class Meta:
        abstract = True

    @property
    def limits(self) -> Limits:
        return Limits.of(self)


class Team(LimitFields):
    """A group of people and the keys they share. Its limits bound every key in it: a key may
    only narrow them (its model patterns must fall inside the team's), and on each request the
    key's limits and the team's must all pass. Every write goes through :mod:`keys.services`."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    model_patterns = models.JSONField(_("models"), default=list)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams", verbose_name=_("members")
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows_model(self, model: str) -> bool:
        return patterns_allow(self.model_patterns, model)


class Membership(models.Model):
    """One person's role in one team (:class:`~keys.constants.TeamRole`)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=8, choices=TeamRole.choices, default=TeamRole.MEMBER)
    created_at = models.DateTimeField(_("since"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="keys_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.team}"


class TeamEvent(models.Model):
    """One change to a team (created, limits changed, a member added, removed or re-roled):
    who, what, when, from where — the team's audit trail beside its keys' events."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("action"), max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("via"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("team event")
        verbose_name_plural = _("team events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.team} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class APIKey(LimitFields):
    """A Keygate key. The plaintext is never stored: only ``public_id`` (for lookup and display)
    and an argon2id hash of the whole key (``key_hash``)."""

    public_id = models.CharField(max_length=crypto.PUBLIC_ID_LENGTH, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=255, editable=False)
    last4 = models.CharField(max_length=4, editable=False)

    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
    )
    # Who made an ownerless key (dashboard, admin, API); null for one the CLI made. An ownerless
    # management key acts with its minter's permissions and stops working when the minter is
    # disabled or may no longer create keys for others (keys.policy). PROTECT, as for owner:
    # deleting the minter must not turn the key into one that answers to nobody.
    minted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("minted by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="minted_keys",
        editable=False,
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="keys",
        editable=False,
        help_text=_("Empty for a personal key. Fixed at creation; rotation keeps it."),
    )
    model_patterns = models.JSONField(_("models"), default=list)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    is_management = models.BooleanField(
        _("management key"),
        default=False,
        help_text=_("May manage keys over the REST API; cannot call any model."),
    )

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    paused_at = models.DateTimeField(
        _("paused"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("While set, the gateway refuses the key like a revoked one; resuming clears it."),
    )
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to", editable=False
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return crypto.mask(self.prefix, self.public_id, self.last4)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_paused and not self.is_expired()

    def status(self, now: datetime | None = None) -> KeyStatus:
        now = now or timezone.now()
        if self.is_revoked:
            return KeyStatus.REVOKED
        if self.is_expired(now):
            return KeyStatus.EXPIRED
        if self.is_paused:
            return KeyStatus.PAUSED
        if self.expires_at is not None and self.expires_at - now <= EXPIRING_SOON:
            return KeyStatus.EXPIRING
        return KeyStatus.ACTIVE

    def expires_in(self, now: datetime | None = None) -> timedelta | None:
        if self.expires_at is None:
            return None
        return self.expires_at - (now or timezone.now())


class KeyEvent(models.Model):
    """One change to a key: who did what, when, from where. Never holds the key itself."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("action"), max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("via"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("key event")
        verbose_name_plural = _("key events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.key.masked} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class UsageRecord(models.Model):
    """One proxied request: written by the gateway in batches, read by the dashboard and API."""

    #: No index of its own: the ``(key, -created_at)`` index below leads with it and serves every
    #: lookup by key. Each index is one more B-tree insert per request in the usage writer.
    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="usage", db_index=False)
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    endpoint = models.CharField(_("endpoint"), max_length=40)
    model = models.CharField(_("model"), max_length=128, blank=True)
    provider = models.CharField(_("provider"), max_length=64, blank=True)
    #: Deployments tried for this request (issue #12): 1 unless it failed over; ``provider``
    #: is the one that answered.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    status_code = models.PositiveSmallIntegerField(_("status"))
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    cost_usd = models.DecimalField(_("cost (USD)"), max_digits=14, decimal_places=8, default=0)
    latency_ms = models.FloatField(_("latency (ms)"), default=0)
    ttfb_ms = models.FloatField(_("time to first byte (ms)"), null=True, blank=True)
    streamed = models.BooleanField(_("streamed"), default=False)
    aborted = models.BooleanField(_("aborted by client"), default=False)
    error_type = models.CharField(_("error"), max_length=64, blank=True)
    #: Not indexed: random values, so every insert landed at a random place in a B-tree that
    #: grows with the table, and no query used it (the admin's search is a substring match).
    request_id = models.CharField(_("request id"), max_length=128, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["key", "-created_at"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.request_id or self.pk} {self.model} {self.status_code}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
