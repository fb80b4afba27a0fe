"""The usage page (operators: every key; others: their own and their teams' keys) and its CSV
export, the same rows as ``GET /api/v1/usage/`` (keys.reports)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from keys import reports
from keys.models import Team
from keys.selectors import visible_teams
from keys.usage import Period

PERIODS = (7, 30, 90)


def chart_labels() -> dict[str, str]:
    return {
        "requests": _("Requests per day"),
        "tokens": _("Tokens per day"),
        "empty": _("No requests in this period."),
    }


DEFAULT_DAYS = 30


def _scope(request: HttpRequest) -> tuple[int, Period, Team | None]:
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        days = DEFAULT_DAYS
    if days not in PERIODS:
        days = DEFAULT_DAYS
    team = None
    if request.GET.get("team"):
        if not request.GET["team"].isdigit():
            raise Http404
        team = visible_teams(request.user).filter(pk=int(request.GET["team"])).first()
        if team is None:
            raise Http404
    return days, Period.last_days(days), team


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    days, period, team = _scope(request)
    rows = reports.usage_rows(request.user, period, team=team)
    query = f"days={days}" + (f"&team={team.pk}" if team else "")
    return render(
        request,
        "keys/usage.html",
        {
            "days": days,
            "periods": PERIODS,
            "team": team,
            "teams": visible_teams(request.user).order_by("name"),
            "period": period,
            "totals": reports.totals(rows),
            "by_team": reports.grouped(rows, "team"),
            "by_model": reports.grouped(rows, "model"),
            "top": reports.top_spenders(rows),
            "rows": rows,
            "query": query,
            "chart": reports.chart(rows, period, chart_labels()),
        },
    )


@login_required
@require_GET
def usage_export(request: HttpRequest) -> HttpResponse:
    _days, period, team = _scope(request)
    body = reports.as_csv(reports.usage_rows(request.user, period, team=team))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = f"keygate-usage-{period.start:%Y%m%d}-{period.end:%Y%m%d}{'-' + team.name if team else ''}.csv"
    response["Content-Disposition"] = f'attachment; filename="{"".join(c for c in name if c.isalnum() or c in "-_.")}"'
    return response
