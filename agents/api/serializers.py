from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lifecycle.serializers import SafeJSONField, StrictSerializer, UserRefSerializer

from ..components import KIND_CHOICES
from ..hooks import annotate_active_releases
from ..models.testresult import TestResultStatus
from ..secrets import mask
from ..selectors import settings_spec
from ..services.presence import MODULES
from ..sync import updates_available


class ActiveReleaseSerializer(serializers.Serializer):
    """The agent's release in progress (rollouts owns releases; see …/releases/)."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    strategy = serializers.CharField()
    stable_version = serializers.IntegerField(allow_null=True)
    candidate_version = serializers.IntegerField()
    weight = serializers.IntegerField()


class AgentSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    lineage = serializers.CharField(source="lineage.slug", read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    owner = UserRefSerializer(read_only=True)
    version = serializers.IntegerField(read_only=True)
    live_version = serializers.IntegerField(read_only=True, allow_null=True)
    release = serializers.SerializerMethodField()
    has_unsaved_changes = serializers.BooleanField(read_only=True)
    source_agent = serializers.UUIDField(source="source_agent_id", read_only=True, allow_null=True)
    updates_available = serializers.SerializerMethodField()
    archived = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    settings = serializers.SerializerMethodField()

    def get_updates_available(self, agent) -> bool:
        return updates_available(agent)

    @extend_schema_field(ActiveReleaseSerializer(allow_null=True))
    def get_release(self, agent) -> dict | None:
        if not hasattr(agent, "active_release"):  # lists annotate a whole page at once
            annotate_active_releases([agent])
        return agent.active_release

    def get_settings(self, agent) -> dict:
        return settings_spec(agent)


class AgentCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    settings = SafeJSONField(required=False, default=dict)
    changelog = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")

    class Meta:
        output = AgentSerializer


class AgentUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    settings = SafeJSONField(required=False)

    class Meta:
        output = AgentSerializer


class ComponentSerializer(serializers.Serializer):
    uid = serializers.UUIDField(read_only=True)
    kind = serializers.ChoiceField(choices=KIND_CHOICES, read_only=True)
    name = serializers.CharField(read_only=True)
    spec = serializers.SerializerMethodField()
    content_hash = serializers.CharField(read_only=True)
    needs_review = serializers.BooleanField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_spec(self, component) -> dict:
        return mask(component.kind, component.spec)


class ComponentCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    name = serializers.CharField(max_length=200, allow_blank=True, default="")
    spec = SafeJSONField()

    class Meta:
        output = ComponentSerializer


class ComponentUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    spec = SafeJSONField(required=False)

    class Meta:
        output = ComponentSerializer


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField(read_only=True)
    changelog = serializers.CharField(read_only=True)
    author = UserRefSerializer(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    source_version = serializers.SerializerMethodField()
    components = serializers.IntegerField(source="manifest.size", read_only=True)

    def get_source_version(self, version) -> dict | None:
        source = version.source_version
        if source is None:
            return None
        return {"agent": str(source.agent_id), "number": source.number}


class VersionComponentSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    spec = serializers.DictField()


class VersionDetailSerializer(VersionSerializer):
    contents = VersionComponentSerializer(many=True, read_only=True)


def changelog_field():
    """A changelog a person writes: required and not blank (400 `fields.changelog`)."""
    return serializers.CharField(max_length=10_000, help_text="Required: what changed, and why.")


class VersionCreateSerializer(StrictSerializer):
    changelog = changelog_field()

    class Meta:
        output = VersionSerializer


class RestoreOverrideSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class RestoreSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1)
    changelog = changelog_field()
    override_freeze = RestoreOverrideSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Org owners and admins only: restore inside a freeze window, with a reason (audited).",
    )


class DiffItemSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    change = serializers.ChoiceField(choices=["created", "updated", "deleted"])
    fields = serializers.ListField(child=serializers.DictField(), required=False)
    before = serializers.JSONField(
        allow_null=True, help_text="The spec in the base version (secrets masked)."
    )
    after = serializers.JSONField(allow_null=True, help_text="The spec in this version (secrets masked).")


class DiffSerializer(serializers.Serializer):
    base = serializers.IntegerField(help_text="The version compared against (?against=).")
    version = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    items = DiffItemSerializer(many=True)


class ExportComponentSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    name = serializers.CharField()
    spec = serializers.DictField()


class ExportSerializer(serializers.Serializer):
    format_version = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    components = ExportComponentSerializer(many=True)


class GrantSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True, help_text="The user's id; DELETE …/grants/{id}/ revokes.")
    user = UserRefSerializer(read_only=True)
    permissions = serializers.ListField(child=serializers.CharField(), read_only=True)


class GrantCreateSerializer(StrictSerializer):
    user = serializers.CharField(max_length=254, help_text="A member's email or user id.")
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=["view", "change", "delete"]), min_length=1, max_length=3
    )

    class Meta:
        output = GrantSerializer


class PresenceSerializer(serializers.Serializer):
    user = UserRefSerializer(read_only=True)
    module = serializers.CharField(read_only=True)
    since = serializers.DateTimeField(read_only=True)
    last_seen = serializers.DateTimeField(read_only=True)


class HeartbeatSerializer(StrictSerializer):
    module = serializers.ChoiceField(choices=MODULES)

    class Meta:
        output = PresenceSerializer


class TestResultSerializer(serializers.Serializer):
    __test__ = False

    id = serializers.UUIDField(read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    version = serializers.IntegerField(read_only=True)
    draft = serializers.BooleanField(read_only=True)
    duration = serializers.FloatField(read_only=True)
    transcript = serializers.JSONField(read_only=True)
    rating = serializers.IntegerField(read_only=True)
    notes = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    conversation = serializers.UUIDField(source="conversation_id", read_only=True, allow_null=True)
    created_by = UserRefSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class TestResultCreateSerializer(StrictSerializer):
    __test__ = False

    duration = serializers.FloatField(min_value=0, max_value=7 * 24 * 3600)
    transcript = SafeJSONField(default=list)
    rating = serializers.IntegerField(min_value=1, max_value=5)
    notes = serializers.CharField(max_length=10_000, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=TestResultStatus.choices)
    conversation = serializers.UUIDField(required=False, allow_null=True)

    class Meta:
        output = TestResultSerializer

    def validate_transcript(self, value):
        if not isinstance(value, (list, str)):
            raise serializers.ValidationError("A list of turns, or text.")
        return value


class TurnSerializer(serializers.Serializer):
    index = serializers.IntegerField(read_only=True)
    role = serializers.CharField(read_only=True)
    text = serializers.CharField(read_only=True)
    interrupted = serializers.BooleanField(read_only=True)
    latency_first_ms = serializers.IntegerField(read_only=True, allow_null=True)
    latency_total_ms = serializers.IntegerField(read_only=True, allow_null=True)
    tokens_in = serializers.IntegerField(read_only=True)
    tokens_out = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(max_digits=12, decimal_places=6, read_only=True)
    details = serializers.JSONField(read_only=True)
    error = serializers.JSONField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    version = serializers.IntegerField(read_only=True)
    draft = serializers.BooleanField(read_only=True)
    source = serializers.CharField(read_only=True)
    started_by = UserRefSerializer(read_only=True, allow_null=True)
    end_user = serializers.CharField(read_only=True)
    turn_count = serializers.IntegerField(read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    tokens_in = serializers.IntegerField(read_only=True)
    tokens_out = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(max_digits=12, decimal_places=6, read_only=True)
    rating = serializers.IntegerField(read_only=True, allow_null=True)
    started_at = serializers.DateTimeField(read_only=True)
    ended_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ConversationDetailSerializer(ConversationSerializer):
    variables = serializers.JSONField(read_only=True)
    turns = TurnSerializer(source="turn_list", many=True, read_only=True)
