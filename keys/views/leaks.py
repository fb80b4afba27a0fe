"""The dashboard's answer to a leaked key: "rotate to a new key" for a revoked key."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from keys import services
from keys.views.common import VIA, client_ip, get_key_or_404, no_store
from keys.views.snippets import snippets_for


@login_required
@require_POST
def key_replace(request: HttpRequest, public_id: str) -> HttpResponse:
    """One click from the leak notice: a successor with the same settings, shown this once.

    A re-sent POST finds the key already replaced and goes back to the key's page, so the
    plaintext is never shown twice.
    """
    key = get_key_or_404(request, public_id)
    try:
        new, raw = services.key_replace(key=key, actor=request.user, via=VIA, ip=client_ip(request))
    except services.KeyServiceError as error:
        messages.error(request, error.message)
        return redirect("keys:detail", public_id=key.public_id)
    key.refresh_from_db()
    base = request.build_absolute_uri("/").rstrip("/")
    context = {"key": new, "raw": raw, "old": key, "snippets": snippets_for(new, raw, base)}
    return no_store(render(request, "keys/key_created.html", context))
