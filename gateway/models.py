"""Upstream providers, model routes and prices: operator configuration, edited in the admin."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProviderKind(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible")
    ANTHROPIC = "anthropic", _("Anthropic")
    DEMO = "demo", _("Built-in demo")


class Provider(models.Model):
    """An upstream. Its URL comes only from here (never from a request: no SSRF through the body).

    The upstream credential is either read from an environment variable (``api_key_env``) or
    stored encrypted (``api_key_encrypted``, Fernet under a key derived from SECRET_KEY).
    """

    name = models.SlugField(_("name"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=ProviderKind.choices)
    base_url = models.URLField(_("base URL"), max_length=500, blank=True)
    api_key_env = models.CharField(_("credential environment variable"), max_length=128, blank=True)
    api_key_encrypted = models.TextField(_("stored credential (encrypted)"), blank=True, editable=False)
    connect_timeout = models.FloatField(_("connect timeout (s)"), default=5.0)
    first_byte_timeout = models.FloatField(_("first-byte timeout (s)"), default=120.0)
    idle_timeout = models.FloatField(_("stream idle timeout (s)"), default=120.0)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    from_environment = models.BooleanField(
        _("declared by environment"),
        default=False,
        editable=False,
        help_text=_("Re-created from OPENAI_* / ANTHROPIC_* variables at every start."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Route(models.Model):
    """Maps a model pattern to a provider, optionally renaming the model upstream.

    The lowest ``priority`` among enabled routes whose pattern matches wins; ties go to the
    most specific (longest) pattern.
    """

    model_pattern = models.CharField(_("model pattern"), max_length=128)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="routes")
    upstream_model = models.CharField(_("upstream model"), max_length=128, blank=True)
    priority = models.IntegerField(_("priority"), default=100)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    listed_models = models.JSONField(
        _("models listed by /v1/models"),
        default=list,
        blank=True,
        help_text=_("Concrete model names this route serves, for /v1/models when the pattern is a glob."),
    )

    class Meta:
        verbose_name = _("route")
        verbose_name_plural = _("routes")
        ordering = ["priority", "model_pattern"]

    def __str__(self) -> str:
        return f"{self.model_pattern} → {self.provider.name}"


class ModelPrice(models.Model):
    """USD per million tokens for models matching a pattern; cost = tokens × price."""

    model_pattern = models.CharField(_("model pattern"), max_length=128, unique=True)
    input_per_mtok = models.DecimalField(_("input, USD per 1M tokens"), max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(_("output, USD per 1M tokens"), max_digits=12, decimal_places=6)

    class Meta:
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")
        ordering = ["model_pattern"]

    def __str__(self) -> str:
        return self.model_pattern
