"""``/api/v1/teams/``: teams and their members, for operators and team admins (keys.policy).

Operators (``keys.add_team`` / ``keys.change_team``) create teams and change their models and
limits; a team's admins (and operators) add, re-role and remove its members; anyone in a team
reads it. A team the caller may not see answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from keys import budgets, policy, services
from keys.api.authentication import ManagementKeyAuthentication
from keys.api.permissions import CanManageKeys
from keys.api.serializers import LimitsSerializer
from keys.api.views import KeyPagination
from keys.constants import TeamRole
from keys.models import Membership, Team
from keys.selectors import visible_teams
from keys.services import KeyState


class MemberSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["user", "role", "created_at"]


class BudgetSerializer(serializers.Serializer):
    unit = serializers.ChoiceField(choices=["tokens", "usd"])
    limit = serializers.DecimalField(max_digits=20, decimal_places=4)
    spent = serializers.DecimalField(max_digits=20, decimal_places=8)
    remaining = serializers.DecimalField(max_digits=20, decimal_places=8)
    percent = serializers.IntegerField()
    period = serializers.CharField()
    resets_at = serializers.DateTimeField(allow_null=True)


class TeamSerializer(serializers.ModelSerializer):
    models = serializers.ListField(source="model_patterns", child=serializers.CharField(), read_only=True)
    members = MemberSerializer(source="memberships", many=True, read_only=True)
    budgets = serializers.SerializerMethodField(help_text="Spent and remaining this period, per budget.")
    keys = serializers.SerializerMethodField(help_text="How many keys the team has (any status).")

    class Meta:
        model = Team
        fields = [
            "id",
            "name",
            "description",
            "models",
            "rpm_limit",
            "tpm_limit",
            "max_parallel",
            "budget_tokens",
            "budget_usd",
            "budget_period",
            "allowed_ips",
            "members",
            "keys",
            "budgets",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(BudgetSerializer(many=True))
    def get_budgets(self, team: Team) -> list[dict[str, object]]:
        return [bar.as_dict() for bar in budgets.budget_bars(team)]

    def get_keys(self, team: Team) -> int:
        return team.keys.count()


class TeamWriteSerializer(LimitsSerializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    models = serializers.ListField(child=serializers.CharField(max_length=128), required=False)

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        if "models" in data:
            data["model_patterns"] = data.pop("models")
        return data


class MemberWriteSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=TeamRole.values, default=TeamRole.MEMBER)


def _invalid(error: services.KeyServiceError) -> exceptions.APIException:
    if isinstance(error, services.Conflict):
        conflict = exceptions.APIException(error.message)
        conflict.status_code = status.HTTP_409_CONFLICT
        return conflict
    field = {"model_patterns": "models"}.get(error.field or "", error.field) or "non_field_errors"
    return exceptions.ValidationError({field: [error.message]})


@extend_schema_view(
    list=extend_schema(summary="List teams"),
    retrieve=extend_schema(summary="Show a team"),
    create=extend_schema(summary="Create a team", request=TeamWriteSerializer, responses={201: TeamSerializer}),
    partial_update=extend_schema(summary="Change a team", request=TeamWriteSerializer, responses=TeamSerializer),
)
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = [ManagementKeyAuthentication, SessionAuthentication]
    permission_classes = [CanManageKeys]
    serializer_class = TeamSerializer
    pagination_class = KeyPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        if isinstance(request.auth, KeyState):
            request.user = policy.acting_user(request.user, request.auth)

    def get_queryset(self) -> QuerySet[Team]:
        return visible_teams(self.request.user).prefetch_related("memberships__user")

    def _audit(self) -> dict[str, Any]:
        user = self.request.user
        auth = self.request.auth
        return {
            "actor": user if isinstance(user, get_user_model()) else None,
            "via": f"api:{auth.public_id}" if isinstance(auth, KeyState) else "api",
            "ip": self.request.META.get("REMOTE_ADDR") or None,
        }

    def create(self, request: Request) -> Response:
        if not policy.can_create_team(request.user):
            raise exceptions.PermissionDenied("Only operators may create teams.")
        payload = TeamWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            team = services.team_create(**payload.service_kwargs(), **self._audit())
        except services.KeyServiceError as error:
            raise _invalid(error)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        team = self.get_object()
        if not policy.can_change_team(request.user, team):
            raise exceptions.PermissionDenied("Only operators may change a team's models and limits.")
        payload = TeamWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        try:
            services.team_update(team=team, **payload.service_kwargs(), **self._audit())
        except services.KeyServiceError as error:
            raise _invalid(error)
        return Response(TeamSerializer(self.get_object()).data)

    def _manageable(self) -> Team:
        team = self.get_object()
        if not policy.can_manage_members(self.request.user, team):
            raise exceptions.PermissionDenied("Only the team's admins (and operators) manage its members.")
        return team

    def _user(self, username: str) -> Any:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise exceptions.ValidationError({"user": [f"no user named {username!r}"]})
        return user

    @extend_schema(summary="Add a member", request=MemberWriteSerializer, responses={201: MemberSerializer})
    @action(detail=True, methods=["post"])
    def members(self, request: Request, **kwargs: Any) -> Response:
        team = self._manageable()
        payload = MemberWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = self._user(payload.validated_data["user"])
        try:
            membership = services.member_add(team=team, user=user, role=payload.validated_data["role"], **self._audit())
        except services.KeyServiceError as error:
            raise _invalid(error)
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a member's role, or remove them", request=MemberWriteSerializer)
    @action(detail=True, methods=["patch", "delete"], url_path=r"members/(?P<username>[\w.@+-]+)")
    def member(self, request: Request, username: str, **kwargs: Any) -> Response:
        team = self._manageable()
        user = self._user(username)
        try:
            if request.method == "DELETE":
                services.member_remove(team=team, user=user, **self._audit())
                return Response(status=status.HTTP_204_NO_CONTENT)
            role = MemberWriteSerializer(data={"user": username, **request.data})
            role.is_valid(raise_exception=True)
            membership = services.member_set_role(
                team=team, user=user, role=role.validated_data["role"], **self._audit()
            )
        except services.KeyServiceError as error:
            raise _invalid(error)
        return Response(MemberSerializer(membership).data)
