"""Shapes of the management API. Serializers check types; :mod:`keys.services` checks values.

No serializer has a field for the key hash. The plaintext appears only in the responses to
create and rotate (``NewKeySerializer``), built from the services' return value.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from keys import services
from keys.constants import GRACE_CHOICES, BudgetPeriod, KeyStatus
from keys.models import APIKey

# The API's field names where they differ from the services'.
API_FIELDS = {"model_patterns": "models", "is_management": "management"}


class KeySerializer(serializers.ModelSerializer):
    """A key as the API shows it: never its hash, never its plaintext."""

    id = serializers.CharField(source="public_id", read_only=True, help_text="The key's public id.")
    masked_key = serializers.CharField(source="masked", read_only=True)
    owner = serializers.SerializerMethodField()
    models = serializers.ListField(source="model_patterns", child=serializers.CharField(), read_only=True)
    management = serializers.BooleanField(source="is_management", read_only=True)
    status = serializers.SerializerMethodField()
    rotated_from = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    rotated_to = serializers.SerializerMethodField()
    team = serializers.SlugRelatedField(slug_field="name", read_only=True, help_text="null: a personal key.")

    class Meta:
        model = APIKey
        fields = [
            "id",
            "name",
            "description",
            "masked_key",
            "owner",
            "models",
            "management",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "paused_at",
            "last_used_at",
            "rotated_from",
            "rotated_to",
            "rpm_limit",
            "tpm_limit",
            "max_parallel",
            "budget_tokens",
            "budget_usd",
            "budget_period",
            "allowed_ips",
            "metadata",
            "team",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_owner(self, key: APIKey) -> str | None:
        return key.owner.get_username() if key.owner else None

    @extend_schema_field(serializers.ChoiceField(choices=KeyStatus.values))
    def get_status(self, key: APIKey) -> str:
        return key.status().value

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_rotated_to(self, key: APIKey) -> str | None:
        successor = getattr(key, "rotated_to", None)
        return successor.public_id if successor else None


class NewKeySerializer(KeySerializer):
    """A key just created or rotated: with its plaintext, shown this once."""

    key = serializers.SerializerMethodField(help_text="The key itself. Shown only in this response.")

    class Meta(KeySerializer.Meta):
        fields = ["key", *KeySerializer.Meta.fields]
        read_only_fields = fields

    def get_key(self, key: APIKey) -> str:
        return self.context["plaintext"]


class RotatedKeySerializer(NewKeySerializer):
    previous = serializers.SerializerMethodField(help_text="The old key, now expiring after the grace period.")

    class Meta(NewKeySerializer.Meta):
        fields = [*NewKeySerializer.Meta.fields, "previous"]
        read_only_fields = fields

    @extend_schema_field(KeySerializer)
    def get_previous(self, key: APIKey) -> dict[str, Any]:
        return KeySerializer(self.context["previous"]).data


class LimitsSerializer(serializers.Serializer):
    """The limits a key and a team both carry (keys.limits.LIMIT_FIELDS), as the API takes them."""

    rpm_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    tpm_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    max_parallel = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    budget_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    budget_usd = serializers.DecimalField(required=False, allow_null=True, max_digits=12, decimal_places=4, min_value=0)
    budget_period = serializers.ChoiceField(
        required=False, allow_blank=True, choices=["", *BudgetPeriod.values], help_text="Blank: no budget period."
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, help_text="CIDR networks; empty: any address."
    )


class _KeyFieldsSerializer(LimitsSerializer):
    """Fields a caller may set on a key (create and update)."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    models = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        help_text='Model patterns: exact names or globs with *, e.g. ["gpt-4o", "claude-*"] or ["*"].',
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="null: never expires.")
    expires_in = serializers.CharField(
        required=False, write_only=True, help_text="Instead of expires_at: a duration from now, e.g. 30d, 24h, 2w."
    )
    metadata = serializers.DictField(required=False, help_text="Free-form JSON object.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "expires_in" in attrs:
            if "expires_at" in attrs:
                raise serializers.ValidationError({"expires_in": "give expires_at or expires_in, not both"})
            try:
                attrs["expires_at"] = timezone.now() + services.parse_duration(attrs.pop("expires_in"))
            except services.KeyServiceError as error:
                raise serializers.ValidationError({"expires_in": error.message})
        return attrs

    def service_kwargs(self) -> dict[str, Any]:
        """The validated data under the services' argument names."""
        data = dict(self.validated_data)
        if "models" in data:
            data["model_patterns"] = data.pop("models")
        return data


class KeyCreateSerializer(_KeyFieldsSerializer):
    owner = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Operators only: the owner's username (null: operator-owned). Default: the caller.",
    )
    management = serializers.BooleanField(
        required=False, default=False, help_text="A management key may call this API and no model."
    )
    team = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The team (name or id) the key belongs to; its models must fall inside the team's. "
        "Team admins and members (and operators) may create keys in a team.",
    )


class KeyUpdateSerializer(_KeyFieldsSerializer):
    name = serializers.CharField(max_length=100, required=False)


class RotateSerializer(serializers.Serializer):
    grace = serializers.CharField(
        default="24h",
        help_text=f"How long the old key keeps working: {', '.join(GRACE_CHOICES)} (or any duration such as 30m).",
    )

    def validate_grace(self, value: str) -> Any:
        try:
            return services.parse_duration(value)
        except services.KeyServiceError as error:
            raise serializers.ValidationError(error.message)


class UsageQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=366, help_text="The last N days (30).")
    start = serializers.DateField(required=False, help_text="First day (instead of days).")
    end = serializers.DateField(required=False, help_text="Last day, inclusive (default: today).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "days" in attrs and ("start" in attrs or "end" in attrs):
            raise serializers.ValidationError("give days, or start and end, not both")
        if "start" in attrs:
            end = attrs.get("end") or timezone.localdate()
            if attrs["start"] > end:
                raise serializers.ValidationError({"start": "start is after end"})
            if (end - attrs["start"]).days >= 366:
                raise serializers.ValidationError({"start": "the period is longer than 366 days"})
            attrs["end"] = end
        elif "end" in attrs:
            raise serializers.ValidationError({"start": "end needs a start"})
        return attrs


class UsageMeasuresSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=8)


class UsageTotalsSerializer(UsageMeasuresSerializer):
    avg_latency_ms = serializers.FloatField(allow_null=True)


class UsageByModelSerializer(UsageTotalsSerializer):
    model = serializers.CharField()


class UsageByDaySerializer(UsageMeasuresSerializer):
    date = serializers.DateField()
    model = serializers.CharField()


class UsageReportSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The key's public id.")
    start = serializers.DateField()
    end = serializers.DateField()
    totals = UsageTotalsSerializer()
    by_model = UsageByModelSerializer(many=True)
    by_day = UsageByDaySerializer(many=True)
