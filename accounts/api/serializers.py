from django.conf import settings
from rest_framework import serializers

from lifecycle.serializers import StrictSerializer, UserRefSerializer

from ..models import OrgRole, StageRoleLevel
from ..selectors import stage_roles_map


class OrgSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    role = serializers.CharField(read_only=True, help_text="The caller's role in the org.")
    created_at = serializers.DateTimeField(read_only=True)


class OrgCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=50, required=False)

    class Meta:
        output = OrgSerializer


class OrgUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)

    class Meta:
        output = OrgSerializer


class MemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    user = UserRefSerializer(read_only=True)
    role = serializers.CharField(read_only=True)
    stage_roles = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_stage_roles(self, membership) -> dict[str, str]:
        return stage_roles_map(membership)


class MemberCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, required=False, write_only=True, trim_whitespace=False)
    role = serializers.ChoiceField(choices=OrgRole.choices, default=OrgRole.MEMBER)
    stage_roles = serializers.DictField(
        child=serializers.ChoiceField(choices=StageRoleLevel.choices), required=False
    )

    class Meta:
        output = MemberSerializer


class MemberUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=OrgRole.choices, required=False)
    stage_roles = serializers.DictField(
        child=serializers.ChoiceField(choices=StageRoleLevel.choices), required=False
    )

    class Meta:
        output = MemberSerializer


class StageSerializer(serializers.Serializer):
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    position = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class StageCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80)
    slug = serializers.SlugField(max_length=50, required=False)
    position = serializers.IntegerField(min_value=0, max_value=100, required=False)

    class Meta:
        output = StageSerializer


class StageUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80, required=False)
    position = serializers.IntegerField(min_value=0, max_value=100, required=False)

    class Meta:
        output = StageSerializer


class TokenCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=settings.API_TOKEN_MAX_DAYS, required=False
    )


class NamedTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=settings.API_TOKEN_MAX_DAYS, required=False
    )


class TokenIssuedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    token = serializers.CharField(help_text="Shown this once; only its hash is stored.")
    expires_at = serializers.DateTimeField()


class TokenSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    prefix = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class PasswordChangeSerializer(StrictSerializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    name = serializers.CharField()
    orgs = OrgSerializer(many=True)
