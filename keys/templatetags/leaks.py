"""``{% leak_notice key %}``: on a key revoked because it leaked, say so, say where, and offer
its owner a successor (:func:`keys.services.key_replace`, ``keys/views/leaks.py``)."""

from __future__ import annotations

from typing import Any

from django import template

from keys.constants import KeyAction
from keys.leaks import REASON
from keys.models import APIKey

register = template.Library()


@register.inclusion_tag("keys/_leak_notice.html", takes_context=True)
def leak_notice(context: dict[str, Any], key: APIKey) -> dict[str, Any]:
    """The notice's context; ``leak`` is None (nothing shown) unless ``key`` was revoked as leaked.

    One query, only for a revoked key. The URL is shown as text and linked only when it is
    http(s): it came from outside (GitHub, a scan) and must never become a ``javascript:`` link.
    """
    leak = None
    if key.is_revoked:
        leak = key.events.filter(action=KeyAction.REVOKED, details__reason=REASON).order_by("-created_at").first()
    url = (leak.details.get("url") or "") if leak else ""
    return {
        "key": key,
        "leak": leak,
        "url": url,
        "url_is_link": url.startswith(("https://", "http://")),
        "successor": getattr(key, "rotated_to", None) if leak else None,
        "csrf_token": context.get("csrf_token"),
    }
