"""Operators configure upstream providers, model routes and prices here.

A provider's credential is write-only: typed once, stored encrypted, never shown again.
Providers declared by the environment (OPENAI_*, ANTHROPIC_*, the demo) are read-only here:
the environment is their source of truth, re-read at every start.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from gateway.models import ModelPrice, Provider, ProviderKind, Route
from gateway.routing import encrypt_credential


def validate_base_url(url: str) -> str:
    """An upstream base URL: http(s), a host, no credentials, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise forms.ValidationError(_("Use an http:// or https:// URL with a host."))
    if parts.username or parts.password:
        raise forms.ValidationError(_("Do not put credentials in the URL; use the credential field."))
    if parts.query or parts.fragment:
        raise forms.ValidationError(_("The base URL cannot have a query string or fragment."))
    return url.rstrip("/")


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
        if kind and kind != ProviderKind.DEMO:
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


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "has_credential", "is_enabled", "from_environment"]
    list_filter = ["kind", "is_enabled", "from_environment"]
    search_fields = ["name", "base_url"]
    inlines = [RouteInline]

    @admin.display(boolean=True, description=_("credential"))
    def has_credential(self, obj: Provider) -> bool:
        return bool(obj.api_key_encrypted or obj.api_key_env)

    def has_change_permission(self, request: HttpRequest, obj: Provider | None = None) -> bool:
        if obj is not None and obj.from_environment:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Provider | None = None) -> bool:
        if obj is not None and obj.from_environment:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ["model_pattern", "provider", "upstream_model", "priority", "is_enabled"]
    list_filter = ["provider", "is_enabled"]
    search_fields = ["model_pattern", "upstream_model"]
    list_editable = ["priority", "is_enabled"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["model_pattern", "input_per_mtok", "output_per_mtok"]
    search_fields = ["model_pattern"]
