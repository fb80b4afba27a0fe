"""Operators configure upstream providers, model routes and prices here.

A provider's credential is write-only: typed once, stored encrypted, never shown again. Where a
credential goes — the base URL, the stored credential, the environment variable it is read from
(only ``KEYGATE_UPSTREAM_*``, the environment providers' two, or names listed in
``KEYGATE_UPSTREAM_ENV_ALLOWED``; see :func:`gateway.models.credential_env_refusal`) — needs its
own permission, ``gateway.change_provider_credential``, beyond changing a provider. Every change
is written to the provider's audit trail (:class:`~gateway.models.ProviderEvent`), never a
credential's value. Providers declared by the environment (OPENAI_*, ANTHROPIC_*, the demo) and
providers, routes and prices declared by the ``KEYGATE_CONFIG`` file are read-only here: the
environment and the file are their source of truth, re-read at every start.

A route's deployments are edited inline on the route; a provider's page shows each deployment
it serves with its circuit breaker's state, recent error rate and last error, as this process
sees them (the same in every process when Redis is configured).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from gateway.breaker import State, process_board
from gateway.models import Deployment, ModelPrice, Provider, ProviderEvent, ProviderKind, Route
from gateway.routing import encrypt_credential
from keys.admin.readonly import ReadOnlyAdmin


def validate_base_url(url: str) -> str:
    """An upstream base URL: http(s), a host, a valid port, no credentials, query or fragment.

    Base URLs come only from operators (here or the environment), never from a request, so this
    guards against mistakes and smuggled credentials rather than SSRF. Private addresses are
    allowed on purpose (a vLLM server on 10.x is normal); see :func:`link_local_host`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise forms.ValidationError(_("Use an http:// or https:// URL with a host."))
    if parts.username or parts.password or "@" in parts.netloc:
        raise forms.ValidationError(_("Do not put credentials in the URL; use the credential field."))
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise forms.ValidationError(_("The base URL cannot have a query string or fragment."))
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise forms.ValidationError(_("The port is not a valid port number.")) from None
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise forms.ValidationError(_("The base URL cannot contain spaces or control characters."))
    return url.rstrip("/")


def link_local_host(url: str) -> str | None:
    """The host of ``url`` if it is a link-local address (169.254.0.0/16, fe80::/10), else None.

    Cloud metadata services (169.254.169.254 and friends) live there; a provider pointing at one
    is almost certainly a mistake or an attempt to reach instance credentials. Operators are
    warned, not refused: the URL is theirs to choose.
    """
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return host if address.is_link_local else None


def _formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Model fields as form fields; URLs assume https (as ``ProviderForm.base_url`` does)."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(label=_("Base URL"), required=False, assume_scheme="https", max_length=500)
    credential = forms.CharField(
        label=_("Credential"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted; never shown again. Leave empty to keep the current one."),
    )
    clear_credential = forms.BooleanField(label=_("Remove the stored credential"), required=False)

    class Meta:
        model = Provider
        # Django's admin re-derives base_url from the model when it is read-only for a user.
        formfield_callback = _formfield
        fields = [
            "name",
            "kind",
            "base_url",
            "api_key_env",
            "connect_timeout",
            "first_byte_timeout",
            "idle_timeout",
            "is_enabled",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind and kind != ProviderKind.DEMO and "base_url" not in self.fields:
            # Read-only for this user (no credential permission): the stored URL must do.
            if not self.instance.base_url:
                self.add_error(None, _("A base URL is required for this kind of provider."))
        elif kind and kind != ProviderKind.DEMO:
            if not data.get("base_url"):
                self.add_error("base_url", _("A base URL is required for this kind of provider."))
            else:
                try:
                    data["base_url"] = validate_base_url(data["base_url"])
                except forms.ValidationError as error:
                    self.add_error("base_url", error)
        for name in ("connect_timeout", "first_byte_timeout", "idle_timeout"):
            value = data.get(name)
            if value is not None and not (0 < value <= 3600):
                self.add_error(name, _("Use a number of seconds between 0 and 3600."))
        return data

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_credential"):
            provider.api_key_encrypted = ""
        elif self.cleaned_data.get("credential"):
            provider.api_key_encrypted = encrypt_credential(self.cleaned_data["credential"])
        if commit:
            provider.save()
        return provider


class RouteInline(admin.TabularInline):
    model = Route
    extra = 1
    fields = ["model_pattern", "upstream_model", "priority", "is_enabled", "listed_models"]


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1
    fields = ["provider", "upstream_model", "priority", "weight", "is_enabled", "breaker"]
    readonly_fields = ["breaker"]

    @admin.display(description=_("circuit breaker"))
    def breaker(self, obj: Deployment) -> str:
        return _breaker_text(f"{obj.provider.name}:{obj.upstream_model or '*'}") if obj.pk else "-"


class FileManaged:
    """Entries declared by the KEYGATE_CONFIG file (or the environment) are read-only here."""

    def _declared(self, obj: Any) -> bool:
        return obj is not None and (getattr(obj, "from_file", False) or getattr(obj, "from_environment", False))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._declared(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._declared(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


_STATE_LABELS = {State.CLOSED: _("closed"), State.OPEN: _("open"), State.HALF_OPEN: _("half-open")}


def _breaker_text(key: str) -> str:
    """``closed · 1/20 errors · last: upstream_503`` for a deployment's breaker."""
    board = process_board()
    failed, attempts = board.error_rate(key)
    parts = [str(_STATE_LABELS[board.state(key)])]
    if attempts:
        parts.append(str(_("%(failed)d/%(attempts)d errors") % {"failed": failed, "attempts": attempts}))
    breaker = board.breakers.get(key)
    if breaker is not None and breaker.last_error:
        parts.append(str(_("last: %(error)s") % {"error": breaker.last_error}))
    return " · ".join(parts)


def _deployment_keys(provider: Provider) -> list[tuple[str, str]]:
    """(route pattern, deployment key) for every deployment of ``provider``."""
    keys = [(r.model_pattern, f"{provider.name}:{r.upstream_model or '*'}") for r in provider.routes.all()]
    keys += [
        (d.route.model_pattern, f"{provider.name}:{d.upstream_model or '*'}")
        for d in provider.deployments.select_related("route")
    ]
    return keys


CREDENTIAL_PERMISSION = "gateway.change_provider_credential"
# The fields that decide where a provider's credential is sent, or which credential it is.
CREDENTIAL_FIELDS = ("base_url", "api_key_env")
_SECRET_FORM_FIELDS = ("credential", "clear_credential")


def _audit_changes(form: Any, change: bool) -> dict[str, Any]:
    """What the admin form changed, as ``{field: [before, after]}`` — never a credential value."""
    changes: dict[str, Any] = {}
    for name in form.changed_data:
        if name in _SECRET_FORM_FIELDS:
            continue
        before = form.initial.get(name) if change else None
        changes[name] = [before, form.cleaned_data.get(name)]
    if form.cleaned_data.get("clear_credential"):
        changes["stored credential"] = "removed"
    elif form.cleaned_data.get("credential"):
        changes["stored credential"] = "set"
    return changes


def _record(request: HttpRequest, provider: Provider, action: str, changes: dict[str, Any]) -> None:
    ProviderEvent.objects.create(
        provider=provider if action != "deleted" else None,
        provider_name=provider.name,
        action=action,
        actor=request.user if request.user.is_authenticated else None,
        ip=request.META.get("REMOTE_ADDR") or None,
        changes=changes,
    )


@admin.register(Provider)
class ProviderAdmin(FileManaged, admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "has_credential", "is_enabled", "from_environment", "from_file"]
    list_filter = ["kind", "is_enabled", "from_environment", "from_file"]
    search_fields = ["name", "base_url"]
    inlines = [RouteInline]

    @admin.display(description=_("deployments and their circuit breakers"))
    def deployment_health(self, obj: Provider) -> str:
        rows = _deployment_keys(obj) if obj.pk else []
        if not rows:
            return "-"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (pattern, key, _breaker_text(key)) for pattern, key in rows
        ))  # fmt: skip
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("route"),
            _("deployment"),
            _("circuit breaker"),
            body,
        )

    @admin.display(boolean=True, description=_("credential"))
    def has_credential(self, obj: Provider) -> bool:
        return bool(obj.api_key_encrypted or obj.api_key_env)

    @staticmethod
    def may_route_credentials(request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(CREDENTIAL_PERMISSION)

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> list[str]:
        readonly = [*super().get_readonly_fields(request, obj), "deployment_health"]
        if not self.may_route_credentials(request):
            readonly += [name for name in CREDENTIAL_FIELDS if name not in readonly]
        return readonly

    def get_form(self, request: HttpRequest, obj: Provider | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not self.may_route_credentials(request):
            form = type(form.__name__, (form,), dict.fromkeys(_SECRET_FORM_FIELDS))
        return form

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        changes = _audit_changes(form, change)
        super().save_model(request, obj, form, change)
        if changes or not change:
            _record(request, obj, "changed" if change else "created", changes)
        host = link_local_host(obj.base_url or "")
        if host:
            messages.warning(
                request,
                _(
                    "%(host)s is a link-local address, where cloud metadata services answer. "
                    "Keygate will send requests (with the provider credential) there: make sure that is intended."
                )
                % {"host": host},
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if change and formset.has_changed():
            _record(request, form.instance, "changed", {"routes": [str(r) for r in form.instance.routes.all()]})

    def delete_model(self, request: HttpRequest, obj: Provider) -> None:
        _record(request, obj, "deleted", {})
        super().delete_model(request, obj)


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    """The providers' audit trail: read-only."""

    list_display = ["created_at", "action", "provider_name", "actor", "ip", "changes"]
    list_filter = ["action", "provider_name"]
    search_fields = ["provider_name", "actor__username", "ip"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"


@admin.register(Route)
class RouteAdmin(FileManaged, admin.ModelAdmin):
    list_display = [
        "model_pattern",
        "provider",
        "upstream_model",
        "deployment_list",
        "priority",
        "is_enabled",
        "from_file",
    ]
    list_filter = ["provider", "is_enabled", "from_file"]
    search_fields = ["model_pattern", "upstream_model"]
    inlines = [DeploymentInline]
    fieldsets = [
        (None, {"fields": ["model_pattern", "provider", "upstream_model", "priority", "is_enabled", "listed_models"]}),
        (_("Retries and fallback"), {"fields": ["max_attempts", "retry_on", "deadline", "retry_after_cap"]}),
    ]

    @admin.display(description=_("deployments"))
    def deployment_list(self, obj: Route) -> str:
        return ", ".join(f"{d} (p{d.priority}, w{d.weight})" for d in obj.deployments.select_related("provider")) or "-"


@admin.register(ModelPrice)
class ModelPriceAdmin(FileManaged, admin.ModelAdmin):
    list_display = ["model_pattern", "input_per_mtok", "output_per_mtok", "from_file"]
    search_fields = ["model_pattern"]
