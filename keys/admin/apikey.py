"""The admin for API keys (APIKeyAdmin) with its status filter. Adding and rotating render the
new key once, in the POST response itself, marked ``no-store``; changes, revocation, pausing and
resuming go through :mod:`keys.services` with ``via="admin"`` and the peer address
(:func:`client_ip`, also Django Axes' ``AXES_CLIENT_IP_CALLABLE``). Who may do what is
:mod:`keys.policy`'s "all keys" rule.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from keys import policy, services
from keys.admin.forms import LIMIT_FORM_FIELDS, KeyChangeForm, KeyCreateForm, RotateForm
from keys.constants import EXPIRING_SOON, GRACE_CHOICES, KeyStatus
from keys.models import APIKey

VIA = "admin"


def client_ip(request: HttpRequest) -> str | None:
    """The peer address of the request (proxies are not trusted here)."""
    return request.META.get("REMOTE_ADDR") or None


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(KeyStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> QuerySet[APIKey]:
        now = timezone.now()
        live = Q(revoked_at__isnull=True)
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        working = Q(paused_at__isnull=True)
        match self.value():
            case KeyStatus.PAUSED:
                return queryset.filter(live, not_expired, paused_at__isnull=False)
            case KeyStatus.REVOKED:
                return queryset.filter(revoked_at__isnull=False)
            case KeyStatus.EXPIRED:
                return queryset.filter(live, expires_at__lte=now)
            case KeyStatus.EXPIRING:
                return queryset.filter(live, working, expires_at__gt=now, expires_at__lte=now + EXPIRING_SOON)
            case KeyStatus.ACTIVE:
                return queryset.filter(live, working, not_expired).exclude(expires_at__lte=now + EXPIRING_SOON)
        return queryset


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "masked_key",
        "owner",
        "team",
        "models",
        "status_badge",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_filter = [StatusFilter, "team", "owner", "minted_by", "is_management"]
    search_fields = ["name", "public_id", "owner__username", "description"]
    list_select_related = ["owner", "team"]
    date_hierarchy = "created_at"
    actions = ["revoke_keys", "pause_keys", "resume_keys", "rotate_keys"]
    form = KeyChangeForm
    readonly_fields = [
        "masked_key",
        "owner",
        "team",
        "minted_by",
        "status_badge",
        "is_management",
        "created_at",
        "revoked_at",
        "revoked_by",
        "paused_at",
        "rotated_from",
        "last_used_at",
        "last_used_ip",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "masked_key",
                    "name",
                    "description",
                    "owner",
                    "team",
                    "minted_by",
                    "status_badge",
                    "is_management",
                ]
            },
        ),
        (_("Access"), {"fields": ["model_patterns", "expires_at"]}),
        (_("Limits"), {"fields": LIMIT_FORM_FIELDS}),
        (
            _("History"),
            {
                "fields": [
                    "created_at",
                    "rotated_from",
                    "paused_at",
                    "revoked_at",
                    "revoked_by",
                    "last_used_at",
                    "last_used_ip",
                ]
            },
        ),
    ]

    @admin.display(description=_("key"), ordering="public_id")
    def masked_key(self, obj: APIKey) -> str:
        return obj.masked

    @admin.display(description=_("models"))
    def models(self, obj: APIKey) -> str:
        return ", ".join(obj.model_patterns) or (_("(management)") if obj.is_management else "-")

    @admin.display(description=_("status"))
    def status_badge(self, obj: APIKey) -> str:
        return obj.status().label

    # The admin shows every key, so each permission is keys.policy's "all keys" rule (the
    # same Django permissions Django's admin would check, asked in one place).
    def has_view_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return policy.can_view_all_keys(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return policy.can_create_for_others(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return False  # keys are revoked, never deleted: the audit trail must survive

    def has_change_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        if obj is not None and obj.is_revoked:
            return False  # revoked keys are read-only
        return policy.can_change_all_keys(request.user)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in ("revoke_keys", "pause_keys", "resume_keys", "rotate_keys"):
                actions.pop(name, None)
        return actions

    # --- add: render the new key once --------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = KeyCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                key, raw = services.key_create(
                    name=data["name"],
                    model_patterns=data["model_patterns"] or "",
                    owner=data["owner"],
                    team=data["team"],
                    expires_at=data["expires_at"],
                    description=data["description"],
                    is_management=data["is_management"],
                    rpm_limit=data["rpm_limit"],
                    tpm_limit=data["tpm_limit"],
                    max_parallel=data["max_parallel"],
                    budget_tokens=data["budget_tokens"],
                    budget_usd=data["budget_usd"],
                    budget_period=data["budget_period"],
                    allowed_ips=data["allowed_ips"],
                    actor=request.user,
                    via=VIA,
                    ip=client_ip(request),
                )
            except services.KeyServiceError as error:
                field = {"model_patterns": "model_patterns"}.get(error.field or "", error.field)
                form.add_error(field if field in form.fields else None, error.message)
            else:
                self.log_addition(request, key, [{"added": {}}])
                return self._show_new_keys(request, [(key, raw)], _("Key created"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add API key"),
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/keys/apikey/add.html", context)

    def _show_new_keys(self, request: HttpRequest, created: list[tuple[APIKey, str]], title: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "opts": self.opts, "created": created}
        response = TemplateResponse(request, "admin/keys/apikey/created.html", context)
        return _no_store(response.render())

    # --- change: through key_update ----------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: APIKey, form: forms.ModelForm, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if not changes:
            return
        try:
            updated = services.key_update(
                key=APIKey.objects.get(pk=obj.pk), actor=request.user, via=VIA, ip=client_ip(request), **changes
            )
        except services.KeyServiceError as error:
            messages.error(request, error.message)
            obj.refresh_from_db()
            return
        obj.__dict__.update({name: getattr(updated, name) for name in changes})

    # --- actions -----------------------------------------------------------------------------

    @admin.action(description=_("Revoke selected keys…"), permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponse | None:
        """A confirmation page first (like Django's delete action); the confirmed POST revokes."""
        if "confirm" not in request.POST:
            return self._confirm(request, queryset, "revoke_keys", _("Revoke keys"))
        done, skipped = self._apply(request, queryset, services.key_revoke)
        if done:
            messages.success(request, ngettext("Revoked %(n)d key.", "Revoked %(n)d keys.", done) % {"n": done})
        if skipped:
            messages.warning(
                request,
                ngettext("%(n)d key was not revoked:", "%(n)d keys were not revoked:", len(skipped))
                % {"n": len(skipped)}
                + " "
                + "; ".join(skipped),
            )
        return None

    @admin.action(description=_("Pause selected keys"), permissions=["change"])
    def pause_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        done, skipped = self._apply(request, queryset, services.key_pause)
        if done:
            messages.success(request, ngettext("Paused %(n)d key.", "Paused %(n)d keys.", done) % {"n": done})
        for message in skipped:
            messages.warning(request, message)

    @admin.action(description=_("Resume selected keys"), permissions=["change"])
    def resume_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        done, skipped = self._apply(request, queryset, services.key_resume)
        if done:
            messages.success(request, ngettext("Resumed %(n)d key.", "Resumed %(n)d keys.", done) % {"n": done})
        for message in skipped:
            messages.warning(request, message)

    def _apply(self, request: HttpRequest, queryset: QuerySet[APIKey], service: Any) -> tuple[int, list[str]]:
        """Run one service on each key; returns how many succeeded and the refusals' messages."""
        done, skipped = 0, []
        for key in queryset:
            try:
                service(key=key, actor=request.user, via=VIA, ip=client_ip(request))
                done += 1
            except services.KeyServiceError as error:
                skipped.append(error.message)
        return done, skipped

    def _confirm(self, request: HttpRequest, queryset: QuerySet[APIKey], action: str, title: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "keys": queryset,
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/keys/apikey/confirm_revoke.html", context)

    @admin.action(description=_("Rotate selected keys…"), permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponse | None:
        form = RotateForm(request.POST if "confirm_rotate" in request.POST else None)
        if form.is_bound and form.is_valid():
            grace = GRACE_CHOICES[form.cleaned_data["grace"]]
            created, errors = [], []
            for key in queryset:
                try:
                    created.append(
                        services.key_rotate(key=key, grace=grace, actor=request.user, via=VIA, ip=client_ip(request))
                    )
                except services.KeyServiceError as error:
                    errors.append(error.message)
            for message in errors:
                messages.error(request, message)
            if created:
                return self._show_new_keys(request, created, _("Keys rotated"))
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Rotate keys"),
            "opts": self.opts,
            "form": form,
            "keys": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/keys/apikey/rotate.html", context)
