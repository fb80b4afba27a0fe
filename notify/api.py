"""``/api/v1/webhooks/``: webhook endpoints over the management API (same credentials as
``/api/v1/keys/``: a management key or a dashboard session).

Everyone may register endpoints for events about their own keys (and, as a team admin, their
teams'); operators (``keys.change_apikey``) may also register *global* endpoints, which receive
every event, and see everyone's. Another user's endpoint answers 404. The signing secret is in the
response that creates the endpoint (and in the admin); deliveries can be read per endpoint.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from keys import policy
from keys.api import schema  # noqa: F401  (registers the management-key OpenAPI scheme)
from keys.api.authentication import ManagementKeyAuthentication
from keys.api.permissions import CanManageKeys
from keys.services import KeyState
from notify.delivery import address_refusal
from notify.models import Delivery, Kind, WebhookEndpoint


class EndpointSerializer(serializers.ModelSerializer):
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=Kind.values), required=False, max_length=20)
    is_global = serializers.BooleanField(
        required=False, default=False, help_text="Every event of every key (operators only)."
    )
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "kinds", "is_active", "is_global", "owner", "created_at"]
        read_only_fields = ["id", "owner", "created_at"]

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["is_global"] = instance.owner_id is None
        return data

    def validate_url(self, url: str) -> str:
        if "\x00" in url:
            raise serializers.ValidationError("the URL cannot contain NUL characters")
        refusal = address_refusal(url)
        if refusal:
            raise serializers.ValidationError(f"this address cannot receive webhooks: {refusal}")
        return url


class NewEndpointSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: verify deliveries with it (shown here once).")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.message_id")
    type = serializers.CharField(source="event.kind")
    status = serializers.CharField(help_text="pending, sent or failed")  # a plain string: no enum name clash

    class Meta:
        model = Delivery
        fields = ["event", "type", "status", "attempts", "last_error", "next_attempt_at", "sent_at", "created_at"]


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's webhook endpoints (operators: everyone's)."""

    authentication_classes = [ManagementKeyAuthentication, SessionAuthentication]
    permission_classes = [CanManageKeys]
    serializer_class = EndpointSerializer
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        if isinstance(request.auth, KeyState):
            request.user = policy.acting_user(request.user, request.auth)

    def _person(self) -> Any:
        """The user the caller is, or None (an ownerless management key)."""
        user = self.request.user
        return user if isinstance(user, get_user_model()) else None

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        endpoints = WebhookEndpoint.objects.select_related("owner").order_by("id")
        if policy.can_change_all_keys(self.request.user):
            return endpoints
        person = self._person()
        return endpoints.filter(owner=person) if person is not None else endpoints.none()

    def _check_global(self, is_global: bool) -> None:
        if is_global and not policy.can_change_all_keys(self.request.user):
            raise exceptions.PermissionDenied("only operators may register global endpoints")
        if not is_global and self._person() is None:
            raise exceptions.ValidationError({"is_global": ["a key without an owner may only manage global endpoints"]})

    @extend_schema(request=EndpointSerializer, responses={201: NewEndpointSerializer})
    def create(self, request: Request) -> Response:
        serializer = EndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        is_global = serializer.validated_data.pop("is_global", False)
        self._check_global(is_global)
        endpoint = serializer.save(owner=None if is_global else self._person())
        return Response(NewEndpointSerializer(endpoint).data | {"secret": endpoint.secret}, status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        if "is_global" in serializer.validated_data:
            is_global = serializer.validated_data.pop("is_global")
            self._check_global(is_global)
            serializer.save(owner=None if is_global else self._person())
        else:
            serializer.save()

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The latest 50 deliveries to this endpoint, newest first."""
        endpoint = self.get_object()
        latest = endpoint.deliveries.select_related("event").order_by("-created_at", "-id")[:50]
        return Response(DeliverySerializer(latest, many=True).data)
