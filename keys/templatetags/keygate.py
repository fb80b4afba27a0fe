"""Template helpers for the dashboard: times that say their zone, and relative times that
carry the absolute time behind them.

Every time is rendered as ``<time datetime="…">`` in the server's zone (UTC by default) with
the zone written out; ``static/keygate/app.js`` rewrites the text into the browser's own zone
and keeps the server's in the ``title``, so the page still reads correctly without script.
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

register = template.Library()


def _absolute(moment: datetime, *, seconds: bool = False) -> str:
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


@register.simple_tag
def when(moment: datetime | None, style: str = "minutes") -> SafeString | str:
    """An absolute time with its zone: ``2026-12-01 21:05 UTC`` (``style="seconds"`` adds them;
    ``style="date"`` shows the date only, the full time on hover)."""
    if moment is None:
        return ""
    full = _absolute(moment, seconds=style == "seconds")
    text = timezone.localtime(moment).strftime("%Y-%m-%d") if style == "date" else full
    return format_html(
        '<time datetime="{}" title="{}" data-local="{}">{}</time>', moment.isoformat(), full, style, text
    )


@register.simple_tag
def ago(moment: datetime | None, now: datetime | None = None) -> SafeString | str:
    """A relative time (``3 hours ago`` / ``in 2 days``) with the absolute time as its title."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if moment <= now:
        text = _("%(time)s ago") % {"time": timesince(moment, now, depth=1)}
    else:
        text = _("in %(time)s") % {"time": timeuntil(moment, now, depth=1)}
    return format_html(
        '<time datetime="{}" title="{}" data-local="title">{}</time>', moment.isoformat(), _absolute(moment), text
    )


@register.filter
def item(mapping: dict, name: str) -> object:
    """``mapping[name]`` in a template (None when absent)."""
    return mapping.get(name) if isinstance(mapping, dict) else None
