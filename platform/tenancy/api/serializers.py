from rest_framework import serializers

from tenancy.models import ApiKey, Invitation, Membership, Plan, Tenant
from tenancy.roles import ALL_SCOPES, Role
from tenancy.services import usage


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True)
    masked = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), allow_empty=False
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )
    rotated_to = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "last4",
            "masked",
            "status",
            "scopes",
            "allowed_ips",
            "monthly_character_limit",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_ip",
            "rotated_from",
            "rotated_to",
        ]
        read_only_fields = [
            "id",
            "last4",
            "created_at",
            "revoked_at",
            "last_used_at",
            "last_used_ip",
            "rotated_from",
        ]

    def get_rotated_to(self, key) -> str | None:
        successor = getattr(key, "rotated_to", None)
        return str(successor.pk) if successor else None


class ApiKeyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    monthly_character_limit = serializers.IntegerField(min_value=0, allow_null=True)
    allowed_ips = serializers.ListField(child=serializers.CharField(max_length=64))


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown only once.")

    class Meta(ApiKeySerializer.Meta):
        fields = ["key", *ApiKeySerializer.Meta.fields]


class RotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(min_value=0, default=86400)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]
        read_only_fields = ["id", "email", "created_at"]


class MembershipCreateSerializer(serializers.Serializer):
    """An existing user's email adds them at once; any other email gets an invitation."""

    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = fields


class IssuedInvitationSerializer(InvitationSerializer):
    invitation = serializers.BooleanField(read_only=True, default=True)
    accept_url = serializers.CharField(
        read_only=True, help_text="The invitee's one-time link. Returned only here, once."
    )

    class Meta(InvitationSerializer.Meta):
        fields = ["invitation", *InvitationSerializer.Meta.fields, "accept_url"]
        read_only_fields = fields


class TenantUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    legal_name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        exclude = ["id"]


class TenantSerializer(serializers.ModelSerializer):
    plan = PlanSerializer(read_only=True)

    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "legal_name", "status", "plan", "created_at"]
        read_only_fields = ["id", "slug", "status", "plan", "created_at"]


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(
        choices=["day", "key", "voice", "model_version"], default="day"
    )
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    api_key = serializers.UUIDField(required=False)
    voice = serializers.CharField(required=False, max_length=100)
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")

    def validate(self, attrs):
        # The range rule is the service's; the console validates its filters with this same
        # serializer, so both answer bad dates alike.
        try:
            usage.check_range(attrs.get("start"), attrs.get("end"))
        except usage.InvalidUsageRange as exc:
            raise serializers.ValidationError({exc.details["field"]: exc.message}) from None
        return attrs


class UsageRowSerializer(serializers.Serializer):
    day = serializers.DateField(required=False, help_text="Present when group_by=day.")
    key = serializers.UUIDField(required=False, allow_null=True)
    voice = serializers.CharField(required=False)
    model_version = serializers.CharField(required=False)
    requests = serializers.IntegerField()
    failed = serializers.IntegerField()
    characters = serializers.IntegerField()
    audio_seconds = serializers.FloatField()


class QuotaSummarySerializer(serializers.Serializer):
    period = serializers.DateField()
    characters_limit = serializers.IntegerField(allow_null=True)
    characters_used = serializers.IntegerField()
    characters_reserved = serializers.IntegerField()
    characters_remaining = serializers.IntegerField(allow_null=True)


class UsageResponseSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    results = UsageRowSerializer(many=True)
    quota = QuotaSummarySerializer()
