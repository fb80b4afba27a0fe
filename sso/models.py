"""Who signed in through the OpenID provider: the link between a provider subject and a user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Identity(models.Model):
    """A user as the provider knows them: linked by ``(issuer, subject)`` — the ``sub`` claim,
    which the provider never reassigns — never by email. ``refresh_token`` (encrypted, only
    when ``offline_access`` is in OIDC_SCOPES) lets ``sso sync`` ask the provider whether it
    still knows the user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="sso_identities"
    )
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    email = models.EmailField(_("email"), blank=True)
    groups = models.JSONField(_("groups"), default=list, blank=True)
    team_roles = models.JSONField(_("team roles"), default=dict, blank=True)
    is_operator = models.BooleanField(_("operator by group"), default=False)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(_("first sign-in"), default=timezone.now, editable=False)
    last_sign_in_at = models.DateTimeField(_("last sign-in"), default=timezone.now, editable=False)
    last_sync_at = models.DateTimeField(_("last checked by sso sync"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("single sign-on identity")
        verbose_name_plural = _("single sign-on identities")
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject")]
        ordering = ["-last_sign_in_at"]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
