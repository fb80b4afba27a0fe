"""``/notifications/``: each user chooses which notices they get by email, and in which language.
(Webhooks are configured by operators in the admin.)"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from notify.models import Kind, Preference


class PreferenceForm(forms.Form):
    wanted = forms.MultipleChoiceField(
        label=_("Email me when"), choices=Kind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    language = forms.ChoiceField(label=_("Language of the emails"), choices=settings.LANGUAGES)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    pref = Preference.objects.filter(user=request.user).first() or Preference(
        user=request.user, language=request.LANGUAGE_CODE if request.LANGUAGE_CODE in dict(settings.LANGUAGES) else "en"
    )
    initial = {"wanted": [k for k in Kind.values if k not in pref.muted_kinds], "language": pref.language}
    form = PreferenceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        pref.muted_kinds = [k for k in Kind.values if k not in form.cleaned_data["wanted"]]
        pref.language = form.cleaned_data["language"]
        pref.save()
        messages.success(request, _("Your notification choices were saved."))
        return redirect("notify:preferences")
    return render(request, "notify/preferences.html", {"form": form, "email": request.user.email})
