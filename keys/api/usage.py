"""``GET /api/v1/usage/``: the usage report's rows (keys.reports), as the CSV export gives them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keys import policy, reports, usage
from keys.api.authentication import ManagementKeyAuthentication
from keys.api.permissions import CanManageKeys
from keys.api.serializers import UsageQuerySerializer
from keys.selectors import visible_teams
from keys.services import KeyState


class UsageRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    team = serializers.CharField(help_text="Empty for a personal key.")
    key = serializers.CharField(help_text="The key's public id.")
    key_name = serializers.CharField()
    model = serializers.CharField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=8)


class ReportTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=8)


class UsageExportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    team = serializers.CharField(allow_null=True)
    totals = ReportTotalsSerializer()
    rows = UsageRowSerializer(many=True)


class UsageView(APIView):
    """Usage by day, team, key and model over the keys the caller may see (operators: all)."""

    authentication_classes = [ManagementKeyAuthentication, SessionAuthentication]
    permission_classes = [CanManageKeys]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        if isinstance(request.auth, KeyState):
            request.user = policy.acting_user(request.user, request.auth)

    @extend_schema(
        summary="Usage by day, team, key and model",
        parameters=[UsageQuerySerializer, OpenApiParameter("team", description="A team's id: only its keys.")],
        responses=UsageExportSerializer,
    )
    def get(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params: dict[str, Any] = query.validated_data
        if "start" in params:
            period = usage.Period(start=params["start"], end=params["end"])
        else:
            period = usage.Period.last_days(params.get("days", 30))
        team = None
        if request.query_params.get("team"):
            value = request.query_params["team"]
            team = visible_teams(request.user).filter(pk=int(value)).first() if value.isdigit() else None
            if team is None:
                raise exceptions.NotFound("No such team.")
        rows = reports.usage_rows(request.user, period, team=team)
        body = {
            "start": period.start,
            "end": period.end,
            "team": team.name if team else None,
            "totals": reports.totals(rows),
            "rows": rows,
        }
        return Response(UsageExportSerializer(body).data)
