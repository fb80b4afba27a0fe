"""Team pages: the teams one is in (every team for operators), and one team — its limits and
budgets this period, members and roles (admins change them), its keys and its audit trail.

Who may do what is keys.policy's: a team one may not see is a 404; one seen but not managed
answers 403 to a change. Every change goes through keys.services (one TeamEvent each).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from keys import budgets, policy, reports, services
from keys.constants import BudgetPeriod, KeyAction, TeamAction, TeamRole
from keys.forms import MemberForm, RoleForm, TeamForm, add_service_error
from keys.models import KeyEvent, Team
from keys.selectors import visible_keys, visible_teams
from keys.usage import Period
from keys.views.common import VIA, client_ip
from keys.views.reports import chart_labels


def get_team_or_404(request: HttpRequest, team_id: int, *, to_manage: bool = False) -> Team:
    team = visible_teams(request.user).filter(pk=team_id).first()
    if team is None:
        raise Http404
    if to_manage and not policy.can_manage_members(request.user, team):
        raise PermissionDenied
    return team


@login_required
@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    roles = policy.team_roles(request.user)
    rows = [
        {"team": team, "role": roles.get(team.pk), "keys": team.keys.count(), "bars": budgets.budget_bars(team)}
        for team in visible_teams(request.user).order_by("name")
    ]
    return render(request, "keys/team_list.html", {"rows": rows, "can_create": policy.can_create_team(request.user)})


@login_required
@require_GET
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    team = get_team_or_404(request, team_id)
    role = policy.role_in(request.user, team.pk)
    members = [
        {"membership": m, "form": RoleForm(initial={"role": m.role}, prefix=f"m{m.user_id}")}
        for m in team.memberships.select_related("user").order_by("user__username")
    ]
    keys = visible_keys(request.user).filter(team=team).order_by("-created_at")
    events = [
        {"event": e, "action": TeamAction(e.action).label if e.action in TeamAction.values else e.action, "key": None}
        for e in team.events.select_related("actor").order_by("-created_at", "-id")[:100]
    ]
    days = int(request.GET["days"]) if request.GET.get("days") in {"7", "30", "90"} else 30
    rows = reports.usage_rows(request.user, Period.last_days(days), team=team)
    key_events = (
        KeyEvent.objects.filter(key__in=keys.values("pk")).select_related("actor", "key").order_by("-created_at", "-id")
    )
    events += [
        {"event": e, "action": KeyAction(e.action).label if e.action in KeyAction.values else e.action, "key": e.key}
        for e in key_events[:100]
    ]
    events.sort(key=lambda row: row["event"].created_at, reverse=True)
    return render(
        request,
        "keys/team_detail.html",
        {
            "team": team,
            "role": TeamRole(role).label if role else None,
            "can_manage": policy.can_manage_members(request.user, team),
            "can_edit": policy.can_change_team(request.user, team),
            "can_create_key": policy.can_create_key_in(request.user, team),
            "members": members,
            "member_form": MemberForm(),
            "keys": [{"key": key, "status": key.status()} for key in keys],
            "bars": budgets.budget_bars(team),
            "budget_period": BudgetPeriod(team.budget_period or BudgetPeriod.TOTAL).label,
            "events": events,
            "days": days,
            "periods": (7, 30, 90),
            "usage_totals": reports.totals(rows),
            "usage_by_key": reports.grouped(rows, "key_name"),
            "usage_by_model": reports.grouped(rows, "model"),
            "chart": reports.chart(rows, Period.last_days(days), chart_labels()),
            "now": timezone.now(),
        },
    )


def _audit(request: HttpRequest) -> dict:
    return {"actor": request.user, "via": VIA, "ip": client_ip(request)}


@login_required
@require_POST
def team_member_add(request: HttpRequest, team_id: int) -> HttpResponse:
    team = get_team_or_404(request, team_id, to_manage=True)
    form = MemberForm(request.POST)
    if form.is_valid():
        user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
        if user is None:
            messages.error(request, _("No user is named %(name)s.") % {"name": form.cleaned_data["username"]})
        else:
            try:
                services.member_add(team=team, user=user, role=form.cleaned_data["role"], **_audit(request))
            except services.KeyServiceError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, _("%(name)s added.") % {"name": user.get_username()})
    else:
        messages.error(request, _("Give a username and a role."))
    return redirect("keys:team", team_id=team.pk)


@login_required
@require_POST
def team_member_change(request: HttpRequest, team_id: int, user_id: int) -> HttpResponse:
    """Change a member's role, or remove them (``remove`` in the POST)."""
    team = get_team_or_404(request, team_id, to_manage=True)
    membership = team.memberships.select_related("user").filter(user_id=user_id).first()
    if membership is None:
        raise Http404
    try:
        if "remove" in request.POST:
            services.member_remove(team=team, user=membership.user, **_audit(request))
            messages.success(request, _("%(name)s removed.") % {"name": membership.user.get_username()})
        else:
            form = RoleForm(request.POST, prefix=f"m{user_id}")
            if form.is_valid():
                services.member_set_role(
                    team=team, user=membership.user, role=form.cleaned_data["role"], **_audit(request)
                )
                messages.success(request, _("Role saved."))
    except services.KeyServiceError as error:
        messages.error(request, error.message)
    policy.forget_roles(request.user)
    return redirect("keys:team", team_id=team.pk)


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    """Create a team (operators with ``keys.add_team``)."""
    if not policy.can_create_team(request.user):
        raise PermissionDenied
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(**form.service_kwargs(), **_audit(request))
        except services.KeyServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Team created."))
            return redirect("keys:team", team_id=team.pk)
    return render(request, "keys/team_form.html", {"form": form, "title": _("New team")})


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, team_id: int) -> HttpResponse:
    """Change a team's name, models and limits (operators with ``keys.change_team``)."""
    team = get_team_or_404(request, team_id)
    if not policy.can_change_team(request.user, team):
        raise PermissionDenied
    form = TeamForm(request.POST or None)
    form.fill_from(team)
    if request.method == "POST" and form.is_valid():
        try:
            services.team_update(team=team, **form.service_kwargs(), **_audit(request))
        except services.KeyServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Team saved."))
            return redirect("keys:team", team_id=team.pk)
    return render(request, "keys/team_form.html", {"form": form, "team": team, "title": _("Edit team")})
