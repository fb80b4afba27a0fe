"""The admin's forms for API keys: "Add key" (KeyCreateForm), the change page (KeyChangeForm) and
the "Rotate" action's grace period (RotateForm). They only collect and shape input; validating the
values and every write are left to :mod:`keys.services`, which the admin views call.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from keys import services
from keys.constants import BudgetPeriod
from keys.limits import LIMIT_FIELDS
from keys.models import APIKey, Team

LIMIT_FORM_FIELDS = list(LIMIT_FIELDS)


class KeyCreateForm(forms.Form):
    """The admin's "Add key" form; validation of values is left to keys.services."""

    name = forms.CharField(label=_("Name"), max_length=100)
    model_patterns = forms.CharField(
        label=_("Models"),
        required=False,
        help_text=_('Comma-separated model patterns, e.g. "gpt-4o, claude-*" or "*" for every model.'),
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None, required=False)
    team = forms.ModelChoiceField(
        label=_("Team"),
        queryset=Team.objects.order_by("name"),
        required=False,
        help_text=_("A team's key may use only the team's models, and the team's limits apply too."),
    )
    expires_at = forms.SplitDateTimeField(
        label=_("Expires"),
        required=False,
        # Two inputs behind one <label>: each needs its own accessible name.
        widget=admin.widgets.AdminSplitDateTime(
            attrs={"aria-describedby": "id_expires_at_helptext"},
        ),
        help_text=_("Date (YYYY-MM-DD) and time (HH:MM); empty: the key never expires."),
    )
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    is_management = forms.BooleanField(
        label=_("Management key"), required=False, help_text=_("May manage keys over the REST API; cannot call models.")
    )
    rpm_limit = forms.IntegerField(label=_("Requests per minute"), required=False, min_value=1)
    tpm_limit = forms.IntegerField(label=_("Tokens per minute"), required=False, min_value=1)
    max_parallel = forms.IntegerField(label=_("Max parallel requests"), required=False, min_value=1)
    budget_tokens = forms.IntegerField(label=_("Token budget"), required=False, min_value=1)
    budget_usd = forms.DecimalField(label=_("Cost budget (USD)"), required=False, min_value=0, decimal_places=4)
    budget_period = forms.ChoiceField(
        label=_("Budget period"), required=False, choices=[("", "—"), *BudgetPeriod.choices]
    )
    allowed_ips = forms.CharField(
        label=_("Allowed client IPs"), required=False, help_text=_("Comma-separated CIDR networks; empty = anywhere.")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        date_input, time_input = self.fields["expires_at"].widget.widgets
        date_input.attrs["aria-label"] = _("Expiry date")
        time_input.attrs["aria-label"] = _("Expiry time")


class KeyChangeForm(forms.ModelForm):
    """Editable fields of an existing key; patterns and IP networks as comma-separated lines."""

    model_patterns = forms.CharField(label=_("Models"), required=False)
    allowed_ips = forms.CharField(
        label=_("Allowed client IPs"), required=False, help_text=_("Comma-separated CIDR networks; empty = anywhere.")
    )
    budget_period = forms.ChoiceField(
        label=_("Budget period"), required=False, choices=[("", "—"), *BudgetPeriod.choices]
    )

    class Meta:
        model = APIKey
        fields = ["name", "description", "model_patterns", "expires_at", *LIMIT_FORM_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.initial["model_patterns"] = ", ".join(self.instance.model_patterns)
            self.initial["allowed_ips"] = ", ".join(self.instance.allowed_ips)

    def clean_allowed_ips(self) -> list[str]:
        try:
            return services.clean_allowed_ips(self.cleaned_data["allowed_ips"] or "")
        except services.KeyServiceError as error:
            raise forms.ValidationError(error.message) from None

    def clean_model_patterns(self) -> list[str]:
        if self.instance.is_management:
            return []
        try:
            return services.clean_model_patterns(self.cleaned_data["model_patterns"] or "")
        except services.KeyServiceError as error:
            raise forms.ValidationError(error.message) from None


class RotateForm(forms.Form):
    grace = forms.ChoiceField(
        label=_("The old key keeps working for"),
        choices=[("now", _("no time: stop now")), ("1h", _("1 hour")), ("24h", _("24 hours")), ("7d", _("7 days"))],
        initial="24h",
    )
