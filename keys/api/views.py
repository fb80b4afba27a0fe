"""The management API: list, create, retrieve, update, rotate and revoke keys; read usage.

Thin over :mod:`keys.services` (every write) and :mod:`keys.selectors` (who sees what): a key
outside the caller's scope answers 404, like a key that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.cache import add_never_cache_headers, patch_cache_control
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from keys import crypto, policy, services, usage
from keys.api import schema  # noqa: F401  (registers the management-key OpenAPI scheme)
from keys.api.authentication import ManagementKeyAuthentication
from keys.api.permissions import CanManageKeys
from keys.api.serializers import (
    API_FIELDS,
    KeyCreateSerializer,
    KeySerializer,
    KeyUpdateSerializer,
    NewKeySerializer,
    RotatedKeySerializer,
    RotateSerializer,
    UsageQuerySerializer,
    UsageReportSerializer,
)
from keys.constants import KeyStatus
from keys.models import APIKey
from keys.selectors import filter_model, filter_status, visible_keys, visible_teams
from keys.services import KeyState


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The key's state does not allow this."
    default_code = "conflict"


class KeyPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _no_store(response: Response) -> Response:
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


def _invalid(error: services.KeyServiceError) -> exceptions.ValidationError:
    field = API_FIELDS.get(error.field or "", error.field) or "non_field_errors"
    return exceptions.ValidationError({field: [error.message]})


def _team_named(identifier: str, prefix: str = "") -> Q:
    """A team by name, or by id when ``identifier`` is a number."""
    named = Q(**{f"{prefix}name": identifier})
    return named | Q(**{f"{prefix}pk": int(identifier)}) if identifier.isdigit() else named


LIST_FILTERS = [
    OpenApiParameter("status", enum=[*KeyStatus.values, "usable"], description="usable: active or expiring"),
    OpenApiParameter("name", description="Keys whose name contains this (case-insensitive)."),
    OpenApiParameter("model", description="Keys that may call this model (patterns are matched)."),
    OpenApiParameter(
        "owner",
        description="With keys.view_apikey: the owner's username, or - for operator-owned keys.",
    ),
    OpenApiParameter("team", description="Keys of this team (name or id), or - for personal keys."),
]


@extend_schema_view(
    list=extend_schema(summary="List keys", parameters=LIST_FILTERS),
    retrieve=extend_schema(summary="Show a key"),
    create=extend_schema(
        summary="Create a key",
        request=KeyCreateSerializer,
        responses={201: NewKeySerializer},
        description="The response carries the key itself (`key`). It is never shown again.",
    ),
    partial_update=extend_schema(summary="Change a key", request=KeyUpdateSerializer, responses=KeySerializer),
)
class KeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Keys the caller may manage: a user's own, or every key for operators (keys.policy)."""

    authentication_classes = [ManagementKeyAuthentication, SessionAuthentication]
    permission_classes = [CanManageKeys]
    serializer_class = KeySerializer
    pagination_class = KeyPagination
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = crypto.PUBLIC_ID_RE.pattern.strip("^$")
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_authentication(self, request: Request) -> None:
        """Authenticate, then act as whom the credential stands for (keys.policy.acting_user):
        an ownerless management key acts with its minter's permissions, never more."""
        super().perform_authentication(request)
        if isinstance(request.auth, KeyState):
            request.user = policy.acting_user(request.user, request.auth)

    def get_queryset(self) -> QuerySet[APIKey]:
        return visible_keys(self.request.user)

    def filter_queryset(self, queryset: QuerySet[APIKey]) -> QuerySet[APIKey]:
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if any("\x00" in value for values in params.lists() for value in values[1]):
            # PostgreSQL refuses NUL in text parameters (a DataError, so a 500): refuse it first.
            raise exceptions.ValidationError({"detail": ["query parameters cannot contain NUL characters"]})
        if params.get("status"):
            if params["status"] not in (*KeyStatus.values, "usable"):
                raise exceptions.ValidationError({"status": [f"unknown status {params['status']!r}"]})
            queryset = filter_status(queryset, params["status"])
        if params.get("name"):
            queryset = queryset.filter(name__icontains=params["name"])
        if params.get("owner") and policy.can_view_all_keys(self.request.user):
            owner = params["owner"]
            queryset = queryset.filter(owner__isnull=True) if owner == "-" else queryset.filter(owner__username=owner)
        if params.get("team"):
            team = params["team"]
            if team == "-":
                queryset = queryset.filter(team__isnull=True)
            else:
                queryset = queryset.filter(_team_named(team, "team__"))
        if params.get("model"):
            queryset = filter_model(queryset, params["model"])
        return queryset

    # --- who is acting -----------------------------------------------------------------------

    def _actor(self) -> Any:
        user = self.request.user
        return user if isinstance(user, get_user_model()) else None

    def _via(self) -> str:
        auth = self.request.auth
        return f"api:{auth.public_id}" if isinstance(auth, KeyState) else "api"

    def _audit(self) -> dict[str, Any]:
        return {"actor": self._actor(), "via": self._via(), "ip": self.request.META.get("REMOTE_ADDR") or None}

    def _changeable(self) -> APIKey:
        """The key named in the URL: 404 if the caller cannot see it, 403 if they cannot change it."""
        key = self.get_object()
        if not policy.can_change_key(self.request.user, key):
            raise exceptions.PermissionDenied("You may see this key but not change it.")
        return key

    def _team_for_new_key(self, data: dict[str, Any]) -> Any:
        """The team named in a create request: one the caller cannot see does not exist (400);
        one they see but may not create keys in (a viewer) is a 403."""
        name = data.pop("team", None)
        scoped = getattr(self.request.user, "team_id", None)  # a management key scoped to a team
        if name is None and scoped is not None:
            name = str(scoped)  # its keys are its team's
        if name is None:
            return None
        team = visible_teams(self.request.user).filter(_team_named(str(name))).first()
        if team is None:
            raise exceptions.ValidationError({"team": [f"no team matches {name!r}"]})
        if not policy.can_create_key_in(self.request.user, team):
            raise exceptions.PermissionDenied("Viewers may not create keys in the team.")
        if data.get("management") and not policy.can_create_management_key_in(self.request.user, team):
            raise exceptions.PermissionDenied("Only the team's admins may make a management key for it.")
        return team

    def _owner_for_new_key(self, data: dict[str, Any]) -> Any:
        user = self.request.user
        if "owner" not in data and user.pk is not None:
            return self._actor()
        if "owner" not in data and getattr(user, "team_id", None) is not None:
            return None  # a team's management key makes the team's (ownerless) keys
        if not policy.can_create_for_others(user):
            raise exceptions.ValidationError({"owner": ["only operators may choose a key's owner"]})
        if "owner" not in data:
            return None  # an ownerless management key makes ownerless keys, as its minter could
        if data["owner"] is None:
            return None
        owner = get_user_model().objects.filter(username=data["owner"], is_active=True).first()
        if owner is None:
            raise exceptions.ValidationError({"owner": [f"no active user named {data['owner']!r}"]})
        return owner

    # --- endpoints ---------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        payload = KeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.service_kwargs()
        team = self._team_for_new_key(data)
        owner = self._owner_for_new_key(data)
        data.pop("owner", None)
        is_management = data.pop("management", False)
        if is_management and data.get("model_patterns"):
            raise exceptions.ValidationError({"models": ["a management key cannot call models: leave models out"]})
        try:
            key, raw = services.key_create(
                owner=owner,
                team=team,
                minted_by=getattr(self.request.user, "minter", None),
                is_management=is_management,
                model_patterns=data.pop("model_patterns", []),
                **data,
                **self._audit(),
            )
        except services.KeyServiceError as error:
            raise _invalid(error)
        body = NewKeySerializer(key, context={"plaintext": raw}).data
        return _no_store(Response(body, status=status.HTTP_201_CREATED))

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        key = self._changeable()
        payload = KeyUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        changes = payload.service_kwargs()
        if not changes:
            raise exceptions.ValidationError({"non_field_errors": ["nothing to change"]})
        try:
            services.key_update(key=key, **changes, **self._audit())
        except services.KeyServiceError as error:
            if error.field is None:
                raise Conflict(error.message)
            raise _invalid(error)
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(summary="Rotate a key", request=RotateSerializer, responses={201: RotatedKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, **kwargs: Any) -> Response:
        """Replace the key with a new one (same name, owner, models, limits); the old one keeps
        working for the grace period. The response carries the new key, shown this once."""
        key = self._changeable()
        payload = RotateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            new, raw = services.key_rotate(key=key, grace=payload.validated_data["grace"], **self._audit())
        except services.KeyServiceError as error:
            raise Conflict(error.message)
        context = {"plaintext": raw, "previous": self.get_object()}
        body = RotatedKeySerializer(self.get_queryset().get(pk=new.pk), context=context).data
        return _no_store(Response(body, status=status.HTTP_201_CREATED))

    @extend_schema(summary="Revoke a key", request=None, responses=KeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, **kwargs: Any) -> Response:
        """Revoke the key for good: it stops working at once."""
        key = self._changeable()
        try:
            services.key_revoke(key=key, **self._audit())
        except services.KeyServiceError as error:
            raise Conflict(error.message)
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(summary="Pause a key", request=None, responses=KeySerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, **kwargs: Any) -> Response:
        """Pause the key: the gateway refuses it at once, until it is resumed (409 if paused or revoked)."""
        key = self.get_object()
        try:
            services.key_pause(key=key, **self._audit())
        except services.KeyServiceError as error:
            raise Conflict(error.message)
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(summary="Resume a paused key", request=None, responses=KeySerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, **kwargs: Any) -> Response:
        """Resume a paused key: it works again at once (409 if it is not paused, or revoked)."""
        key = self.get_object()
        try:
            services.key_resume(key=key, **self._audit())
        except services.KeyServiceError as error:
            raise Conflict(error.message)
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(summary="A key's usage", parameters=[UsageQuerySerializer], responses=UsageReportSerializer)
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, **kwargs: Any) -> Response:
        """Requests, errors, tokens and cost over a period: totals, per model, and per day and model."""
        key = self.get_object()
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if "start" in params:
            period = usage.Period(start=params["start"], end=params["end"])
        else:
            period = usage.Period.last_days(params.get("days", 30))
        report = {"key": key.public_id, "start": period.start, "end": period.end, **usage.summary(key, period)}
        return Response(UsageReportSerializer(report).data)
