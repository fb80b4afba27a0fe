"""Read-only dashboard pages: the key list and a key's detail (usage, requests, audit trail)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from keys import usage
from keys.constants import BudgetPeriod, KeyAction
from keys.forms import KeyFilterForm
from keys.models import APIKey
from keys.selectors import filter_status, visible_keys
from keys.views.common import get_key_or_404

PAGE_SIZE = 50
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


@login_required
@require_GET
def key_list(request: HttpRequest) -> HttpResponse:
    """My keys (with keys.view_apikey: everyone's, filterable by owner), with requests in the last 24 hours."""
    data = request.GET.copy()
    data.setdefault("status", "usable")
    form = KeyFilterForm(data, user=request.user)
    keys = visible_keys(request.user)
    if form.is_valid():
        values = form.cleaned_data
        keys = filter_status(keys, values["status"])
        if values.get("q"):
            keys = keys.filter(name__icontains=values["q"])
        owner = values.get("owner")
        if owner == KeyFilterForm.NO_OWNER:
            keys = keys.filter(owner__isnull=True)
        elif owner:
            keys = keys.filter(owner_id=owner)
    page = Paginator(keys, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = usage.requests_last_24h(page.object_list)
    now = timezone.now()
    rows = [{"key": key, "status": key.status(now), "requests_24h": counts.get(key.pk, 0)} for key in page]
    query = data.copy()
    query.pop("page", None)
    return render(
        request,
        "keys/key_list.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode(), "now": now},
    )


@login_required
@require_GET
def key_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """One key: its settings, usage chart, recent requests and audit trail. Never the key itself."""
    key = get_key_or_404(request, public_id)
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    if days not in PERIODS:
        days = DEFAULT_PERIOD
    period = usage.Period.last_days(days)
    chart = usage.chart_data(key, period)
    chart["labels"] = {
        "requests": _("Requests per day"),
        "tokens": _("Tokens per day"),
        "empty": _("No requests in this period."),
    }
    successor = getattr(key, "rotated_to", None)
    return render(
        request,
        "keys/key_detail.html",
        {
            "key": key,
            "status": key.status(),
            "successor": successor,
            "chart": chart,
            "chart_rows": usage.daily_by_model(key, period),
            "days": days,
            "periods": PERIODS,
            "recent": usage.recent_requests(key),
            "events": _audit_rows(key),
            "now": timezone.now(),
            "budget_period": BudgetPeriod(key.budget_period or BudgetPeriod.TOTAL).label,
        },
    )


def _audit_rows(key: APIKey, limit: int = 100) -> list[dict[str, Any]]:
    """The key's events, newest first, with translated actions and readable details."""
    rows = []
    for event in key.events.select_related("actor").order_by("-created_at", "-id")[:limit]:
        action = KeyAction(event.action).label if event.action in KeyAction.values else event.action
        details = [
            (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
            for name, value in (event.details or {}).items()
        ]
        rows.append({"event": event, "action": action, "details": details})
    return rows
