"""Operators' admin for teams, their members and their audit trail.

Writes go through :mod:`keys.services` (one TeamEvent each, and the team's keys announced to
the gateway after a change of models or limits): the team form calls ``team_create`` /
``team_update``; the members inline calls ``member_add`` / ``member_set_role`` /
``member_remove``. Who may use it: Django's model permissions on teams (keys.policy).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from keys import services
from keys.admin.readonly import ReadOnlyAdmin
from keys.limits import LIMIT_FIELDS
from keys.models import Membership, Team, TeamEvent

VIA = "admin"


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class TeamForm(forms.ModelForm):
    patterns = forms.CharField(
        label=_("Models"),
        initial="*",
        help_text=_('Comma-separated patterns the team\'s keys may use, e.g. "gpt-*, claude-*" or "*".'),
    )
    allowed_ips = forms.CharField(
        label=_("Allowed client IPs"), required=False, help_text=_("CIDR networks, comma-separated. Empty: any.")
    )

    class Meta:
        model = Team
        fields = ["name", "description", *(f for f in LIMIT_FIELDS if f != "allowed_ips")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["patterns"] = ", ".join(self.instance.model_patterns)
            self.initial["allowed_ips"] = ", ".join(self.instance.allowed_ips)

    def clean(self) -> dict[str, Any]:
        """The services' validation, shown on the form's fields (the model's own is skipped)."""
        data = super().clean()
        checks = (
            ("patterns", lambda: services.clean_model_patterns(data.get("patterns") or "")),
            ("name", lambda: services.clean_name(data.get("name"))),
            (None, lambda: services.clean_limits(self.service_kwargs(data))),
        )
        for field, check in checks:
            try:
                check()
            except services.KeyServiceError as error:
                target = field or (error.field if error.field in self.fields else None)
                self.add_error(target, error.message)
        return data

    def _post_clean(self) -> None:
        """Validation is the services' (clean); the model's own is skipped."""

    def service_kwargs(self, cleaned: dict[str, Any] | None = None) -> dict[str, Any]:
        cleaned = self.cleaned_data if cleaned is None else cleaned
        data = {name: cleaned.get(name) for name in ("name", "description", *LIMIT_FIELDS)}
        data["budget_period"] = data["budget_period"] or ""
        data["description"] = data["description"] or ""
        data["allowed_ips"] = data["allowed_ips"] or ""
        data["model_patterns"] = cleaned.get("patterns") or ""
        return data


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ["user", "role"]
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamForm
    inlines = [MembershipInline]
    list_display = ["name", "models", "budget", "member_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("models"))
    def models(self, team: Team) -> str:
        return ", ".join(team.model_patterns)

    @admin.display(description=_("budget"))
    def budget(self, team: Team) -> str:
        parts = [f"{team.budget_tokens} tokens"] if team.budget_tokens else []
        parts += [f"${team.budget_usd}"] if team.budget_usd else []
        return f"{' / '.join(parts)} ({team.budget_period})" if parts and team.budget_period else "—"

    @admin.display(description=_("members"))
    def member_count(self, team: Team) -> int:
        return team.memberships.count()

    def save_model(self, request: HttpRequest, obj: Team, form: TeamForm, change: bool) -> None:
        audit = {"actor": request.user, "via": VIA, "ip": _ip(request)}
        try:
            if change:
                services.team_update(team=Team.objects.get(pk=obj.pk), **form.service_kwargs(), **audit)
            else:
                created = services.team_create(**form.service_kwargs(), **audit)
                obj.pk = created.pk
        except services.KeyServiceError as error:
            messages.error(request, error.message)
            raise _Refused from error
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        team = form.instance
        audit = {"actor": request.user, "via": VIA, "ip": _ip(request)}
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.forms:
            if not inline.has_changed() or not inline.cleaned_data:
                continue
            membership = inline.instance
            user = inline.cleaned_data.get("user")
            try:
                if inline.cleaned_data.get("DELETE") and membership.pk:
                    services.member_remove(team=team, user=membership.user, **audit)
                elif membership.pk:
                    services.member_set_role(team=team, user=membership.user, role=inline.cleaned_data["role"], **audit)
                elif user is not None:
                    services.member_add(team=team, user=user, role=inline.cleaned_data["role"], **audit)
            except services.KeyServiceError as error:
                messages.error(request, error.message)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _Refused:
            from django.shortcuts import redirect

            return redirect(request.get_full_path())


class _Refused(Exception):
    """A service refused the team form (its message is shown); nothing was written."""


@admin.register(TeamEvent)
class TeamEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "action", "actor", "actor_label", "ip"]
    list_filter = ["action"]
    search_fields = ["team__name", "actor__username"]
