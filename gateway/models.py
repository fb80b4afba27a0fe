"""Upstream providers, model routes and prices: operator configuration, edited in the admin."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Which environment variables a provider may read its credential from (SECURITY.md, "Provider
# credentials"). Anyone who may edit a provider chooses the variable *and* where its value is
# sent, so an open choice would hand them every process secret (issue #10, finding 7). Allowed:
# names starting KEYGATE_UPSTREAM_, the two the environment providers use, and names the
# deployment lists in KEYGATE_UPSTREAM_ENV_ALLOWED. Keygate's own secrets and configuration are
# refused even when listed.
CREDENTIAL_ENV_PREFIX = "KEYGATE_UPSTREAM_"
CREDENTIAL_ENV_BUILTIN = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY"})
KEYGATE_OWN_SECRETS = frozenset(
    {
        "SECRET_KEY",
        "KEYGATE_PEPPER",
        "DJANGO_SUPERUSER_PASSWORD",
        "DATABASE_URL",
        "REDIS_URL",
        "EMAIL_URL",
        "EMAIL_HOST_PASSWORD",
        "KEYGATE_METRICS_TOKEN",
        "KEYGATE_UPSTREAM_ENV_ALLOWED",
    }
)
# Whole families that are Keygate's or Django's own: never a provider credential.
_OWN_PREFIXES = ("DJANGO_", "KEYGATE_")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")


def credential_env_refusal(name: str) -> str | None:
    """Why ``name`` may not hold a provider credential, or None when it may."""
    if not _ENV_NAME.match(name):
        return str(_("Use an environment variable name: capital letters, digits and underscores."))
    if name in KEYGATE_OWN_SECRETS or (name.startswith(_OWN_PREFIXES) and not name.startswith(CREDENTIAL_ENV_PREFIX)):
        return str(_("%(name)s is Keygate's own configuration, never a provider credential.") % {"name": name})
    if name.startswith(CREDENTIAL_ENV_PREFIX) or name in CREDENTIAL_ENV_BUILTIN:
        return None
    if name in getattr(settings, "KEYGATE_UPSTREAM_ENV_ALLOWED", ()):
        return None
    return str(
        _(
            "Name the variable %(prefix)s…, or list %(name)s in KEYGATE_UPSTREAM_ENV_ALLOWED "
            "(OPENAI_API_KEY and ANTHROPIC_API_KEY are always allowed)."
        )
        % {"prefix": CREDENTIAL_ENV_PREFIX, "name": name}
    )


def validate_credential_env(name: str) -> None:
    """Model-field validator: refuse a credential variable :func:`credential_env_refusal` refuses."""
    refusal = credential_env_refusal(name) if name else None
    if refusal:
        raise ValidationError(refusal, code="credential_env")


class ProviderKind(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible")
    # vLLM, Ollama, LM Studio…: no Responses API, so Keygate serves /v1/responses by translation.
    OPENAI_CHAT = "openai-chat", _("OpenAI-compatible, Chat Completions only")
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
    api_key_env = models.CharField(
        _("credential environment variable"),
        max_length=128,
        blank=True,
        validators=[validate_credential_env],
        help_text=_(
            "KEYGATE_UPSTREAM_…, OPENAI_API_KEY, ANTHROPIC_API_KEY, or a name in KEYGATE_UPSTREAM_ENV_ALLOWED."
        ),
    )
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
    from_file = models.BooleanField(
        _("declared by the configuration file"),
        default=False,
        editable=False,
        help_text=_("Declared in KEYGATE_CONFIG; re-read at every start and by `manage.py gateway reload`."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["name"]
        permissions = [
            (
                "change_provider_credential",
                "Can change where a provider's credential goes (base URL, credential, its variable)",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class ProviderEvent(models.Model):
    """One change to a provider, made in the admin: who, when, from where, and what changed.

    ``changes`` maps a field to ``[before, after]``; the stored credential is recorded only as
    ``"set"`` / ``"removed"``, never its value (an environment variable's *name* is no secret).
    """

    provider = models.ForeignKey(Provider, null=True, on_delete=models.SET_NULL, related_name="events")
    provider_name = models.CharField(_("provider"), max_length=64)
    action = models.CharField(_("action"), max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.provider_name} at {self.created_at:%Y-%m-%d %H:%M:%S}"


#: Upstream statuses that move a request to the next deployment unless a route says otherwise.
DEFAULT_RETRY_ON = (429, 500, 502, 503, 504, 529)
#: Upstream statuses that say the request itself is wrong: returned, never retried.
NEVER_RETRIED = frozenset({400, 404, 413, 422})


def default_retry_on() -> list[int]:
    return list(DEFAULT_RETRY_ON)


def validate_retry_on(value: object) -> None:
    """A list of HTTP statuses 400–599, none of which says the request itself is wrong."""
    if not isinstance(value, list) or not all(isinstance(s, int) and 400 <= s <= 599 for s in value):
        raise ValidationError(_("List HTTP statuses between 400 and 599."), code="retry_on")
    wrong = sorted(NEVER_RETRIED.intersection(value))
    if wrong:
        raise ValidationError(
            _("%(statuses)s mean the request itself is wrong; they are never retried.")
            % {"statuses": ", ".join(map(str, wrong))},
            code="retry_on",
        )


class Route(models.Model):
    """Maps a model pattern to one or more deployments (docs/architecture.md, "Routing").

    The lowest ``priority`` among enabled routes whose pattern matches wins; ties go to the
    most specific (longest) pattern. The route's own ``provider`` (with ``upstream_model``) is
    its single deployment, the shorthand most routes use; :class:`Deployment` rows add more
    (fallbacks, weighted load balancing). A request is retried on the next deployment before
    its first byte reaches the client, at most ``max_attempts`` times in all.
    """

    model_pattern = models.CharField(_("model pattern"), max_length=128)
    provider = models.ForeignKey(
        Provider,
        on_delete=models.CASCADE,
        related_name="routes",
        null=True,
        blank=True,
        help_text=_("The route's own deployment (priority 0, weight 1); leave empty to use only the deployments."),
    )
    upstream_model = models.CharField(_("upstream model"), max_length=128, blank=True)
    priority = models.IntegerField(_("priority"), default=100)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    listed_models = models.JSONField(
        _("models listed by /v1/models"),
        default=list,
        blank=True,
        help_text=_("Concrete model names this route serves, for /v1/models when the pattern is a glob."),
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("max attempts"), default=3, help_text=_("Deployments tried per request, the first one included.")
    )
    retry_on = models.JSONField(
        _("retry on upstream statuses"),
        default=default_retry_on,
        blank=True,
        validators=[validate_retry_on],
        help_text=_("Upstream statuses that move a request to the next deployment (401/403 always do)."),
    )
    deadline = models.FloatField(
        _("deadline (s)"),
        default=0,
        help_text=_("Bound on the time until the answer starts, all attempts together (0: none)."),
    )
    retry_after_cap = models.FloatField(
        _("retry-after cap (s)"),
        default=0,
        help_text=_(
            "Honour an upstream retry-after up to this many seconds on the same deployment, "
            "only when no other deployment is left (0: never)."
        ),
    )
    from_file = models.BooleanField(_("declared by the configuration file"), default=False, editable=False)

    class Meta:
        verbose_name = _("route")
        verbose_name_plural = _("routes")
        ordering = ["priority", "model_pattern"]

    def __str__(self) -> str:
        return f"{self.model_pattern} → {self.provider.name}" if self.provider else self.model_pattern

    def clean(self) -> None:
        if not 1 <= self.max_attempts <= 10:
            raise ValidationError({"max_attempts": _("Use a number between 1 and 10.")})
        if self.deadline < 0 or self.retry_after_cap < 0:
            raise ValidationError(_("Deadlines and caps are seconds, 0 or more."))


class Deployment(models.Model):
    """One upstream a route may send a request to: a provider, the model asked of it, a priority
    (lowest first; the next only when none of these can serve) and a weight (share of traffic
    among healthy deployments of one priority)."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="deployments")
    upstream_model = models.CharField(_("upstream model"), max_length=128, blank=True)
    priority = models.IntegerField(_("priority"), default=0)
    weight = models.PositiveIntegerField(_("weight"), default=1)
    is_enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("deployment")
        verbose_name_plural = _("deployments")
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.provider.name}:{self.upstream_model or '*'}"


class ModelPrice(models.Model):
    """USD per million tokens for models matching a pattern; cost = tokens × price."""

    model_pattern = models.CharField(_("model pattern"), max_length=128, unique=True)
    input_per_mtok = models.DecimalField(_("input, USD per 1M tokens"), max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(_("output, USD per 1M tokens"), max_digits=12, decimal_places=6)
    from_file = models.BooleanField(_("declared by the configuration file"), default=False, editable=False)

    class Meta:
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")
        ordering = ["model_pattern"]

    def __str__(self) -> str:
        return self.model_pattern
