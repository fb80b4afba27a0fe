"""Read-only dashboard pages: the key list and a key's detail (usage, requests, audit trail)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET

from keys import budgets, crypto, policy, usage
from keys.constants import BudgetPeriod, KeyAction
from keys.forms import KeyFilterForm
from keys.models import APIKey, UsageRecord
from keys.selectors import filter_status, visible_keys
from keys.views.common import get_key_or_404

PAGE_SIZE = 50
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


# The list's sortable columns: ?sort=<name> ascending, ?sort=-<name> descending.
SORTS = {
    "name": "name",
    "owner": "owner__username",
    "created": "created_at",
    "expires": "expires_at",
    "last_used": "last_used_at",
    "requests": "requests_24h",
}
DEFAULT_SORT = "-created"


def _search(keys: QuerySet[APIKey], text: str) -> QuerySet[APIKey]:
    """Keys whose name contains ``text``, or whose public id it starts (a pasted masked key)."""
    text = text.strip()
    condition = Q(name__icontains=text)
    candidate = text.removeprefix(f"{settings.KEYGATE_KEY_PREFIX}-")
    candidate = re.split(r"…|\.\.\.", candidate)[0][: crypto.PUBLIC_ID_LENGTH]
    if len(candidate) >= 4 and candidate.isascii() and candidate.isalnum():
        condition |= Q(public_id__startswith=candidate)
    return keys.filter(condition)


def _sorted(keys: QuerySet[APIKey], sort: str, *, now: Any) -> tuple[QuerySet[APIKey], str]:
    """``keys`` in the order ``sort`` names (unknown: newest first); empty values sort last."""
    name = sort.removeprefix("-")
    if name not in SORTS:
        sort, name = DEFAULT_SORT, DEFAULT_SORT.removeprefix("-")
    if name == "requests":
        recent = (
            UsageRecord.objects.filter(key=OuterRef("pk"), created_at__gte=now - usage.DAY)
            .order_by()
            .values("key")
            .annotate(n=Count("id"))
            .values("n")
        )
        keys = keys.annotate(requests_24h=Coalesce(Subquery(recent, output_field=IntegerField()), 0))
    field = F(SORTS[name])
    order = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True)
    return keys.order_by(order, "-id"), sort


@login_required
@require_GET
def key_list(request: HttpRequest) -> HttpResponse:
    """My keys (with keys.view_apikey: everyone's, filterable by owner): sortable, searchable by name
    or key, with requests in the last 24 hours and the spend of the current budget period."""
    data = request.GET.copy()
    data.setdefault("status", "usable")
    form = KeyFilterForm(data, user=request.user)
    keys = visible_keys(request.user)
    if form.is_valid():
        values = form.cleaned_data
        keys = filter_status(keys, values["status"])
        if values.get("q"):
            keys = _search(keys, values["q"])
        owner = values.get("owner")
        if owner == KeyFilterForm.NO_OWNER:
            keys = keys.filter(owner__isnull=True)
        elif owner:
            keys = keys.filter(owner_id=owner)
    now = timezone.now()
    keys, sort = _sorted(keys, request.GET.get("sort", DEFAULT_SORT), now=now)
    page = Paginator(keys, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = usage.requests_last_24h(page.object_list, now=now)
    spend = usage.spend_this_period(page.object_list, now=now)
    rows = [
        {
            "key": key,
            "status": key.status(now),
            "requests_24h": counts.get(key.pk, 0),
            "spend": spend.get(key.pk, Decimal(0)),
            "period": _period_label(key.budget_period),
        }
        for key in page
    ]
    query = data.copy()
    query.pop("page", None)
    query.pop("sort", None)
    return render(
        request,
        "keys/key_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "page_query": _with(query, sort=sort),
            "columns": _columns(query, sort, staff=request.user.is_staff),
            "now": now,
        },
    )


def _with(query: QueryDict, **values: str) -> str:
    copy = query.copy()
    for name, value in values.items():
        copy[name] = value
    return copy.urlencode()


def _period_label(budget_period: str) -> str:
    return {
        BudgetPeriod.DAY: _("today"),
        BudgetPeriod.WEEK: _("this week"),
        BudgetPeriod.TOTAL: _("in total"),
    }.get(budget_period, _("this month"))


def _columns(query: QueryDict, sort: str, *, staff: bool) -> list[dict[str, Any]]:
    """The list's column headers: label, and for sortable ones the link and ``aria-sort`` state.

    A sortable header's link sorts by it (newest / largest first, names A→Z), or reverses the
    order when it is the current one.
    """
    columns = [
        ("name", _("Name"), False),
        ("", _("Key"), False),
        *([("owner", _("Owner"), False)] if staff else []),
        ("", _("Models"), False),
        ("", _("Status"), False),
        ("created", _("Created"), False),
        ("expires", _("Expires"), False),
        ("last_used", _("Last used"), False),
        ("requests", _("Requests (24 h)"), True),
        ("", _("Spend"), True),
    ]
    current, descending = sort.removeprefix("-"), sort.startswith("-")
    result = []
    for name, label, numeric in columns:
        column: dict[str, Any] = {"name": name, "label": label, "num": numeric}
        if name:
            is_current = name == current
            if is_current:
                next_sort = name if descending else f"-{name}"
            else:
                next_sort = name if name in ("name", "owner") else f"-{name}"
            column.update(
                current=is_current,
                aria_sort=("descending" if descending else "ascending") if is_current else "none",
                href="?" + _with(query, sort=next_sort),
            )
        result.append(column)
    return result


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
    chart_summary = _chart_summary(chart, days)
    successor = getattr(key, "rotated_to", None)
    return render(
        request,
        "keys/key_detail.html",
        {
            "key": key,
            "status": key.status(),
            "successor": successor,
            "chart": chart,
            "chart_summary": chart_summary,
            "chart_rows": usage.daily_by_model(key, period),
            "days": days,
            "periods": PERIODS,
            "recent": usage.recent_requests(key),
            "events": _audit_rows(key),
            "now": timezone.now(),
            "budget_period": BudgetPeriod(key.budget_period or BudgetPeriod.TOTAL).label,
            "can_change": policy.can_change_key(request.user, key),
            "bars": budgets.budget_bars(key),
            "team_bars": budgets.budget_bars(key.team) if key.team_id else [],
        },
    )


def _via_label(via: str) -> str:
    """An event's channel in the reader's language (``api:<public id>`` keeps the id)."""
    labels = {
        "dashboard": _("dashboard"),
        "admin": _("admin"),
        "cli": _("command line"),
        "api": _("REST API"),
    }
    channel, _sep, rest = via.partition(":")
    label = labels.get(channel, via)
    if channel == "api" and rest:
        return _("REST API (key %(id)s)") % {"id": rest}
    return label


def _field_label(name: str) -> str:
    try:
        return str(APIKey._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def _detail_value(name: str, value: Any) -> str:
    if name == "fields" and isinstance(value, list):
        return ", ".join(_field_label(str(item)) for item in value)
    if name in ("grace_seconds", "paused_seconds") and isinstance(value, int):
        return timesince(timezone.now() - timedelta(seconds=value), depth=2) if value else _("no time")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


DETAIL_LABELS = {
    "name": _lazy("name"),
    "fields": _lazy("fields"),
    "successor": _lazy("successor"),
    "rotated_from": _lazy("replaces"),
    "grace_seconds": _lazy("grace period"),
    "paused_seconds": _lazy("paused for"),
    "expires_at": _lazy("expires"),
}


def _audit_rows(key: APIKey, limit: int = 100) -> list[dict[str, Any]]:
    """The key's events, newest first, with translated actions, channels and details."""
    rows = []
    for event in key.events.select_related("actor").order_by("-created_at", "-id")[:limit]:
        action = KeyAction(event.action).label if event.action in KeyAction.values else event.action
        details = [
            (str(DETAIL_LABELS.get(name, name)), _detail_value(name, value))
            for name, value in (event.details or {}).items()
        ]
        rows.append({"event": event, "action": action, "via": _via_label(event.actor_label), "details": details})
    return rows


def _chart_summary(chart: dict[str, Any], days: int) -> dict[str, str]:
    """One sentence per chart for its accessible name: total, busiest day, top model."""
    summary = {}
    titles = {"requests": _("Requests per day"), "tokens": _("Tokens per day")}
    for series, title in titles.items():
        values = chart.get(series) or {}
        per_day = [
            sum((values.get(m) or [0] * len(chart["days"]))[i] for m in chart["models"])
            for i in range(len(chart["days"]))
        ]
        total = sum(per_day)
        if not total:
            summary[series] = _("%(title)s, last %(days)d days: none.") % {"title": title, "days": days}
            continue
        peak = max(range(len(per_day)), key=per_day.__getitem__)
        top = max(chart["models"], key=lambda m: sum(values.get(m) or []))
        share = round(100 * sum(values.get(top) or []) / total)
        summary[series] = _(
            "%(title)s, last %(days)d days: %(total)s in total, most on %(day)s (%(peak)s); "
            "top model %(model)s (%(share)d%%). The table below has every value."
        ) % {
            "title": title,
            "days": days,
            "total": f"{total:,}",
            "day": chart["days"][peak],
            "peak": f"{per_day[peak]:,}",
            "model": top or "-",
            "share": share,
        }
    return summary
