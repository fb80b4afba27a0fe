"""Dashboard forms. They collect input; :mod:`keys.services` validates it and decides.

A :class:`~keys.services.KeyServiceError` raised by a service is put back on the form with
:func:`add_service_error`, on the field it names when the form has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from keys import policy, services
from keys.constants import BudgetPeriod, TeamRole
from keys.limits import LIMIT_FIELDS
from keys.models import APIKey, Team

logger = logging.getLogger(__name__)

# Offered when the gateway cannot list its routes (not installed yet, or no setting).
SUGGESTED_MODELS = ["*", "gpt-4o", "gpt-4o-mini", "claude-*"]

# The services' field names where they differ from the form's.
SERVICE_FIELDS = {"model_patterns": "patterns", "expires_at": "expiry_date", "grace": "grace"}


def model_choices() -> list[str]:
    """Model names to offer as checkboxes: ``*`` first, then the gateway's configured models.

    ``settings.KEYGATE_MODEL_CHOICES`` names a callable returning model names; when it is unset
    or cannot be loaded (the gateway is optional to this app), the common suggestions are used.
    """
    path = getattr(settings, "KEYGATE_MODEL_CHOICES", None)
    names: list[str] = []
    if path:
        try:
            loader: Callable[[], list[str]] = import_string(path)
            names = list(loader())
        except (ImportError, AttributeError):
            names = []
        except DatabaseError:  # e.g. the gateway's tables are not migrated yet
            logger.warning("KEYGATE_MODEL_CHOICES (%s) failed; offering suggestions", path, exc_info=True)
            names = []
    if not names:
        return list(SUGGESTED_MODELS)
    return ["*", *(name for name in dict.fromkeys(names) if name != "*")]


def add_service_error(form: forms.Form, error: services.KeyServiceError) -> None:
    """Show a service's refusal on the field it concerns, or above the form."""
    field = SERVICE_FIELDS.get(error.field or "", error.field)
    form.add_error(field if field in form.fields else None, error.message)


class ExpiryChoice:
    KEEP = "keep"
    NEVER = "never"
    DATE = "date"
    DAYS = {"30d": 30, "90d": 90, "365d": 365}


class LimitsForm(forms.Form):
    """The limits a key and a team both carry (keys.limits.LIMIT_FIELDS), as the dashboard takes them."""

    rpm_limit = forms.IntegerField(label=_("Requests per minute"), required=False, min_value=1)
    tpm_limit = forms.IntegerField(label=_("Tokens per minute"), required=False, min_value=1)
    max_parallel = forms.IntegerField(label=_("Parallel requests"), required=False, min_value=1)
    budget_tokens = forms.IntegerField(label=_("Token budget"), required=False, min_value=1)
    budget_usd = forms.DecimalField(
        label=_("Cost budget (USD)"), required=False, min_value=0, max_digits=12, decimal_places=4
    )
    budget_period = forms.ChoiceField(
        label=_("Budget period"),
        required=False,
        choices=[("", _("none")), *BudgetPeriod.choices],
    )
    allowed_ips = forms.CharField(
        label=_("Allowed client IPs"),
        required=False,
        help_text=_("CIDR networks, comma- or line-separated, e.g. 10.0.0.0/8. Empty: any address."),
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )

    @property
    def has_limits(self) -> bool:
        """True when the optional limits section should start open."""
        if any(self[name].errors for name in LIMIT_FIELDS):
            return True
        values = self.data if self.is_bound else self.initial
        return any(values.get(name) not in (None, "", []) for name in LIMIT_FIELDS)

    def limits(self) -> dict[str, Any]:
        values = {name: self.cleaned_data.get(name) for name in LIMIT_FIELDS}
        values["budget_period"] = values["budget_period"] or ""
        values["allowed_ips"] = (values["allowed_ips"] or "").replace("\n", ",")
        return values


class KeyForm(LimitsForm):
    """Create or edit a key: name, models, expiry and the optional limits.

    ``model_patterns()`` and ``expires_at()`` turn the widgets' values into what the services
    take; ``limits()`` returns the limit fields.
    """

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What uses this key, e.g. dev-server-integration."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "dev-server-integration"}),
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    models = forms.MultipleChoiceField(
        label=_("Models"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=(),
        help_text=_("The models this key may call. Requests for any other model are refused."),
    )
    patterns = forms.CharField(
        label=_("Other models or patterns"),
        required=False,
        help_text=_('Comma-separated, e.g. "gpt-4.1, claude-3-5-*". "*" allows every model.'),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    expiry = forms.ChoiceField(label=_("Expiry"), initial="90d", widget=forms.RadioSelect, choices=())
    expiry_date = forms.DateField(
        label=_("Expiry date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Used when “On a date” is chosen. The key stops working at the start of that day."),
    )

    owner = forms.ModelChoiceField(
        label=_("Owner"), queryset=None, required=False, empty_label=_("Operators (no owner)")
    )
    is_management = forms.BooleanField(
        label=_("Management key"),
        required=False,
        help_text=_("May manage keys over the REST API (/api/v1/); cannot call any model."),
    )
    team = forms.ModelChoiceField(
        label=_("Team"),
        queryset=Team.objects.none(),
        required=False,
        empty_label=_("None (a personal key)"),
        help_text=_("A team's key may use only the team's models, and the team's limits apply too."),
    )

    def __init__(self, *args: Any, user: Any, instance: APIKey | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.user = user
        choices = model_choices()
        self.fields["models"].choices = [(name, _("All models (*)") if name == "*" else name) for name in choices]
        expiry = [
            (ExpiryChoice.NEVER, _("Never")),
            ("30d", _("In 30 days")),
            ("90d", _("In 90 days")),
            ("365d", _("In 365 days")),
            (ExpiryChoice.DATE, _("On a date")),
        ]
        if instance is not None:
            current = (
                timezone.localtime(instance.expires_at).strftime("%Y-%m-%d %H:%M")
                if instance.expires_at
                else _("never")
            )
            expiry.insert(0, (ExpiryChoice.KEEP, _("Keep the current expiry (%(when)s)") % {"when": current}))
            self.fields["expiry"].initial = ExpiryChoice.KEEP
            self._fill_from(instance, choices)
        self.fields["expiry"].choices = expiry

        if instance is not None or not policy.can_create_for_others(user):
            del self.fields["owner"]  # the owner is fixed at creation; only operators choose it
        else:
            self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
            self.fields["owner"].initial = user.pk
        teams = _teams_to_create_in(user)
        if instance is not None or not teams.exists():
            del self.fields["team"]  # fixed at creation; offered only to those in a team
        else:
            self.fields["team"].queryset = teams
        if instance is not None:
            del self.fields["is_management"]  # fixed at creation
            if instance.is_management:
                del self.fields["models"], self.fields["patterns"]

    def _fill_from(self, key: APIKey, choices: list[str]) -> None:
        self.initial.update(
            {
                "name": key.name,
                "description": key.description,
                "models": [p for p in key.model_patterns if p in choices],
                "patterns": ", ".join(p for p in key.model_patterns if p not in choices),
                **{name: getattr(key, name) for name in LIMIT_FIELDS},
                "allowed_ips": "\n".join(key.allowed_ips),
            }
        )
        if key.expires_at:
            self.initial["expiry_date"] = timezone.localdate(key.expires_at)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("expiry") == ExpiryChoice.DATE and not data.get("expiry_date"):
            self.add_error("expiry_date", _("Choose the date the key expires."))
        elif data.get("expiry_date") and data.get("expiry") not in (ExpiryChoice.DATE, None):
            # A typed date with another expiry chosen was once ignored without a word.
            self.add_error(
                "expiry_date", _("You entered a date but chose another expiry: choose “On a date”, or clear the date.")
            )
        team = data.get("team")
        if team is not None and data.get("is_management") and not policy.can_create_management_key_in(self.user, team):
            self.add_error("team", _("Only the team's admins may make a management key for it."))
        if "models" in self.fields and not data.get("is_management"):
            if not data.get("models") and not (data.get("patterns") or "").strip():
                self.add_error("models", _("Choose at least one model, or type a pattern such as *."))
        return data

    def error_summary(self) -> list[tuple[str, str]]:
        """Every error, as ``(anchor id, message)`` for the list at the top of the form."""
        summary = [("", str(message)) for message in self.non_field_errors()]
        for name, errors in self.errors.items():
            if name == "__all__":
                continue
            field = self[name]
            # A group of radios or checkboxes is reached through its first input.
            anchor = f"{field.auto_id}_0" if field.field.widget.use_fieldset else field.auto_id
            summary.extend((anchor, f"{field.label}: {message}") for message in errors)
        return summary

    def model_patterns(self) -> list[str]:
        chosen = list(self.cleaned_data.get("models") or [])
        typed = (self.cleaned_data.get("patterns") or "").replace("\n", ",").split(",")
        return chosen + [p.strip() for p in typed if p.strip()]

    def has_expiry_change(self) -> bool:
        return self.cleaned_data["expiry"] != ExpiryChoice.KEEP

    def expires_at(self, *, now: datetime | None = None) -> datetime | None:
        choice = self.cleaned_data["expiry"]
        if choice in ExpiryChoice.DAYS:
            return (now or timezone.now()) + timedelta(days=ExpiryChoice.DAYS[choice])
        if choice == ExpiryChoice.DATE:
            return timezone.make_aware(datetime.combine(self.cleaned_data["expiry_date"], time.min))
        if choice == ExpiryChoice.KEEP and self.instance is not None:
            return self.instance.expires_at
        return None

    def limits(self) -> dict[str, Any]:
        values = {name: self.cleaned_data.get(name) for name in LIMIT_FIELDS}
        values["budget_period"] = values["budget_period"] or ""
        values["allowed_ips"] = (values["allowed_ips"] or "").replace("\n", ",")
        return values


def _teams_to_create_in(user: Any) -> Any:
    """The teams ``user`` may create keys in (keys.policy.can_create_key_in), by name."""
    teams = Team.objects.order_by("name")
    if policy.can_create_for_others(user):
        return teams
    mine = [team_id for team_id, role in policy.team_roles(user).items() if role in (policy.ADMIN, policy.MEMBER)]
    return teams.filter(pk__in=mine)


class RotateForm(forms.Form):
    """How long the old key keeps working once its successor exists."""

    grace = forms.ChoiceField(
        label=_("The old key keeps working for"),
        widget=forms.RadioSelect,
        choices=[
            ("now", _("No time: it stops now")),
            ("1h", _("1 hour")),
            ("24h", _("24 hours")),
            ("7d", _("7 days")),
        ],
        initial="24h",
    )


class KeyFilterForm(forms.Form):
    """The key list's filters (GET). ``owner`` is shown to those who see everyone's keys."""

    STATUS_CHOICES = [
        ("usable", _("Working")),
        ("", _("All")),
        ("active", _("Active")),
        ("expiring", _("Expiring")),
        ("paused", _("Paused")),
        ("expired", _("Expired")),
        ("revoked", _("Revoked")),
    ]
    NO_OWNER = "-"

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, public id or masked key"), "spellcheck": "false"}
        ),
    )
    status = forms.ChoiceField(label=_("Status"), required=False, choices=STATUS_CHOICES)
    owner = forms.ChoiceField(label=_("Owner"), required=False, choices=())

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if policy.can_view_all_keys(user):
            users = get_user_model().objects.filter(api_keys__isnull=False).distinct().order_by("username")
            self.fields["owner"].choices = [
                ("", _("Everyone")),
                (self.NO_OWNER, _("Operators (no owner)")),
                *((str(u.pk), u.get_username()) for u in users),
            ]
        else:
            del self.fields["owner"]


class MemberForm(forms.Form):
    """Add someone to a team (team page, for the team's admins and operators)."""

    username = forms.CharField(label=_("Username"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=TeamRole.choices, initial=TeamRole.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=TeamRole.choices)


class TeamForm(LimitsForm):
    """Create or change a team (operators): its name, models and limits."""

    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    patterns = forms.CharField(
        label=_("Models"),
        initial="*",
        help_text=_('Comma-separated patterns the team\'s keys may use, e.g. "gpt-*, claude-*" or "*".'),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    field_order = ["name", "description", "patterns", *LIMIT_FIELDS]

    def fill_from(self, team: Team) -> None:
        self.initial.update(
            {
                "name": team.name,
                "description": team.description,
                "patterns": ", ".join(team.model_patterns),
                **{name: getattr(team, name) for name in LIMIT_FIELDS},
                "allowed_ips": "\n".join(team.allowed_ips),
            }
        )

    def service_kwargs(self) -> dict[str, Any]:
        return {
            "name": self.cleaned_data["name"],
            "description": self.cleaned_data["description"],
            "model_patterns": self.cleaned_data["patterns"],
            **self.limits(),
        }
