"""Dashboard writes: create, edit, rotate, pause, resume, revoke (one or many). Each calls :mod:`keys.services` with the
signed-in user as the actor, so the audit trail and cache invalidation are never skipped.

Create and rotate answer the POST with the new key itself (rendered, not redirected; nothing
kept in the session or messages; ``Cache-Control: no-store``). It is never shown again.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from keys import crypto, policy, services
from keys.constants import GRACE_CHOICES
from keys.forms import KeyForm, RotateForm, add_service_error
from keys.models import APIKey
from keys.selectors import visible_keys
from keys.views.common import (
    VIA,
    client_ip,
    get_key_or_404,
    no_store,
    once_token_issue,
    once_token_spend,
    once_token_state,
)
from keys.views.snippets import snippets_for


def _replayed(request: HttpRequest, form: Any) -> HttpResponse | None:
    """The answer to a re-sent create/rotate POST; None when the form may be processed.

    Validates ``form``; a form whose token is unknown (expired session) gets an error.
    """
    usable, public_id = once_token_state(request)
    if public_id:
        messages.info(request, _("This key was shown once and cannot be shown again."))
        return redirect("keys:detail", public_id=public_id)
    if form.is_valid() and not usable:
        form.add_error(None, _("This form has expired. Check your keys, then submit it again."))
    return None


def _show_new_key(request: HttpRequest, key: APIKey, raw: str, *, old: APIKey | None = None) -> HttpResponse:
    once_token_spend(request, key.public_id)
    base = request.build_absolute_uri("/").rstrip("/")
    context = {"key": key, "raw": raw, "old": old, "snippets": snippets_for(key, raw, base)}
    return no_store(render(request, "keys/key_created.html", context))


@login_required
@require_http_methods(["GET", "POST"])
def key_create(request: HttpRequest) -> HttpResponse:
    """The create form; a valid POST answers with the new key itself, shown this once."""
    form = KeyForm(request.POST or None, user=request.user, initial={"team": request.GET.get("team")})
    if request.method == "POST":
        replay = _replayed(request, form)
        if replay is not None:
            return replay
        if form.is_valid() and not form.non_field_errors():
            data = form.cleaned_data
            owner = data["owner"] if policy.can_create_for_others(request.user) else request.user
            try:
                key, raw = services.key_create(
                    name=data["name"],
                    description=data["description"],
                    model_patterns=form.model_patterns(),
                    owner=owner,
                    team=data.get("team"),
                    expires_at=form.expires_at(),
                    is_management=data["is_management"],
                    actor=request.user,
                    via=VIA,
                    ip=client_ip(request),
                    **form.limits(),
                )
            except services.KeyServiceError as error:
                add_service_error(form, error)
            else:
                return _show_new_key(request, key, raw)
    context = {"form": form, "once": once_token_issue(request), "title": _("Create key")}
    return no_store(render(request, "keys/key_form.html", context))


@login_required
@require_http_methods(["GET", "POST"])
def key_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    """Change a visible key's name, description, models, expiry and limits (not its owner)."""
    key = get_key_or_404(request, public_id, to_change=True)
    if key.is_revoked:
        messages.error(request, _("A revoked key cannot be changed."))
        return redirect("keys:detail", public_id=key.public_id)
    form = KeyForm(request.POST or None, user=request.user, instance=key)
    if request.method == "POST" and form.is_valid():
        changes: dict[str, Any] = {
            "name": form.cleaned_data["name"],
            "description": form.cleaned_data["description"],
            **form.limits(),
        }
        if "models" in form.fields:
            changes["model_patterns"] = form.model_patterns()
        if form.has_expiry_change():
            changes["expires_at"] = form.expires_at()
        try:
            services.key_update(key=key, actor=request.user, via=VIA, ip=client_ip(request), **changes)
        except services.KeyServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Key saved."))
            return redirect("keys:detail", public_id=key.public_id)
    return render(request, "keys/key_form.html", {"form": form, "key": key, "title": _("Edit key")})


@login_required
@require_http_methods(["GET", "POST"])
def key_rotate(request: HttpRequest, public_id: str) -> HttpResponse:
    """Choose the old key's grace; a valid POST answers with the successor, shown this once."""
    key = get_key_or_404(request, public_id, to_change=True)
    form = RotateForm(request.POST or None)
    if request.method == "POST":
        replay = _replayed(request, form)
        if replay is not None:
            return replay
        if form.is_valid() and not form.non_field_errors():
            try:
                new, raw = services.key_rotate(
                    key=key,
                    grace=GRACE_CHOICES[form.cleaned_data["grace"]],
                    actor=request.user,
                    via=VIA,
                    ip=client_ip(request),
                )
            except services.KeyServiceError as error:
                add_service_error(form, error)
            else:
                return _show_new_key(request, new, raw, old=key)
    context = {"form": form, "key": key, "once": once_token_issue(request)}
    return no_store(render(request, "keys/key_rotate.html", context))


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request: HttpRequest, public_id: str) -> HttpResponse:
    """A confirmation page (GET); the POST revokes the key at once and for good."""
    key = get_key_or_404(request, public_id, to_change=True)
    error = None
    if request.method == "POST":
        try:
            services.key_revoke(key=key, actor=request.user, via=VIA, ip=client_ip(request))
        except services.KeyServiceError as refusal:
            error = refusal.message
        else:
            messages.success(request, _("Key %(name)s revoked. It no longer works.") % {"name": key.name})
            return redirect(reverse("keys:detail", kwargs={"public_id": key.public_id}))
    return render(request, "keys/key_revoke.html", {"key": key, "error": error})


@login_required
@require_POST
def key_pause(request: HttpRequest, public_id: str) -> HttpResponse:
    """Pause a visible key (reversible, so no confirmation page); back to its page."""
    key = get_key_or_404(request, public_id)
    try:
        services.key_pause(key=key, actor=request.user, via=VIA, ip=client_ip(request))
    except services.KeyServiceError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, _("Key %(name)s paused. It is refused until you resume it.") % {"name": key.name})
    return redirect("keys:detail", public_id=key.public_id)


@login_required
@require_POST
def key_resume(request: HttpRequest, public_id: str) -> HttpResponse:
    """Resume a paused visible key; back to its page."""
    key = get_key_or_404(request, public_id)
    try:
        services.key_resume(key=key, actor=request.user, via=VIA, ip=client_ip(request))
    except services.KeyServiceError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, _("Key %(name)s resumed. It works again.") % {"name": key.name})
    return redirect("keys:detail", public_id=key.public_id)


BULK_ACTIONS = {"pause": services.key_pause, "revoke": services.key_revoke}


@login_required
@require_POST
def key_bulk(request: HttpRequest) -> HttpResponse:
    """Pause or revoke the keys ticked in the list: a confirmation page, then the confirmed POST.

    Only keys the user may see are acted on; ids of other keys are ignored like unknown ones.
    """
    action = request.POST.get("bulk_action", "")
    ids = [value for value in request.POST.getlist("key") if crypto.PUBLIC_ID_RE.match(value)]
    keys = list(visible_keys(request.user).filter(public_id__in=ids).order_by("name", "id"))
    if action not in BULK_ACTIONS or not keys:
        messages.error(request, _("Tick at least one key, then choose what to do with it."))
        return redirect("keys:list")
    if request.POST.get("confirm") != "1":
        return render(request, "keys/key_bulk.html", {"keys": keys, "action": action})
    done, refusals = 0, []
    for key in keys:
        try:
            BULK_ACTIONS[action](key=key, actor=request.user, via=VIA, ip=client_ip(request))
            done += 1
        except services.KeyServiceError as refusal:
            refusals.append(refusal.message)
    if done:
        text = (
            ngettext("%(n)d key paused.", "%(n)d keys paused.", done)
            if action == "pause"
            else ngettext("%(n)d key revoked.", "%(n)d keys revoked.", done)
        )
        messages.success(request, text % {"n": done})
    for message in refusals:
        messages.warning(request, message)
    return redirect("keys:list")
