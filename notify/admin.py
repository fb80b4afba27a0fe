"""Notifications in the admin: webhook endpoints (operators), preferences, and the outbox with
every delivery's status, attempts and last error — and "Send again"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notify.delivery import address_refusal
from notify.models import Delivery, Event, Kind, Preference, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    kinds = forms.MultipleChoiceField(
        label=_("events"),
        choices=Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "owner", "kinds", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        refusal = address_refusal(url)
        if refusal:
            raise forms.ValidationError(_("This address cannot receive webhooks: %(why)s") % {"why": refusal})
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("url", "owner", "is_active", "created_at")
    list_filter = ("is_active",)
    readonly_fields = ("signing_secret",)

    @admin.display(description=_("signing secret"))
    def signing_secret(self, endpoint: WebhookEndpoint) -> str:
        """Shown to whoever may change the endpoint, to configure the receiver's verification."""
        return endpoint.secret if endpoint.pk else _("made when you save")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "language", "muted_kinds")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "user", "endpoint", "status", "attempts", "next_attempt_at", "last_error", "sent_at")
    readonly_fields = fields


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("message_id", "kind", "key", "created_at", "fanned_out_at")
    list_filter = ("kind",)
    readonly_fields = ("message_id", "kind", "key", "data", "created_at", "fanned_out_at")
    inlines = [DeliveryInline]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "channel", "user", "endpoint", "status", "attempts", "last_error", "sent_at")
    list_filter = ("status", "channel")
    readonly_fields = (
        "event",
        "channel",
        "user",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    )
    actions = ["send_again"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.action(description=_("Send again"))
    def send_again(self, request: Any, queryset: Any) -> None:
        count = queryset.update(status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0)
        self.message_user(
            request, _("%(count)d deliveries queued; the worker sends them.") % {"count": count}, messages.SUCCESS
        )
