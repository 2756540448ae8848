from rest_framework import serializers

from agents.api.serializers import changelog_field
from lifecycle.serializers import StrictSerializer, UserRefSerializer


class OverrideFreezeSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, help_text="Why the freeze window is overridden (audited).")


def override_freeze_field():
    return OverrideFreezeSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Org owners and admins only: pass a freeze window, with a reason. Anyone else: 403.",
    )


class PromoteSerializer(StrictSerializer):
    confirm = serializers.CharField(
        max_length=20, allow_blank=True, trim_whitespace=False, help_text='Exactly "accept".'
    )
    changelog = changelog_field()
    acknowledge_editors = serializers.BooleanField(default=False)
    override_freeze = override_freeze_field()


class PullItemSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    change = serializers.ChoiceField(choices=["created", "updated", "deleted", "conflict"])
    source_changed = serializers.BooleanField()
    selectable = serializers.BooleanField()
    fields_changed = serializers.ListField(
        child=serializers.CharField(), help_text="Top-level spec fields (and `name`) that differ."
    )
    before = serializers.JSONField(
        allow_null=True, help_text="This agent's spec now (secrets masked); null if it has none."
    )
    after = serializers.JSONField(
        allow_null=True, help_text="The previous stage's spec (secrets masked); null for a deletion."
    )


class PullPreviewSerializer(serializers.Serializer):
    source_agent = serializers.UUIDField()
    source_stage = serializers.CharField()
    source_stage_name = serializers.CharField()
    source_version = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    by_kind = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    in_sync_refresh = serializers.IntegerField(
        help_text="Components that already agree; a pull only marks them synced."
    )
    items = PullItemSerializer(many=True)


class PullApplySerializer(StrictSerializer):
    confirm = serializers.CharField(
        max_length=20, allow_blank=True, trim_whitespace=False, help_text='Exactly "accept".'
    )
    exclude = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=20_000
    )
    overwrite = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=20_000
    )
    changelog = changelog_field()
    acknowledge_editors = serializers.BooleanField(default=False)
    override_freeze = override_freeze_field()


class BackportItemSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    change = serializers.CharField()


class BackportPreviewItemSerializer(BackportItemSerializer):
    change = serializers.ChoiceField(
        choices=["created", "updated", "unchanged", "conflict"],
        help_text="Against the first stage now; a conflict changed there since the hotfix's base.",
    )
    before = serializers.JSONField(
        allow_null=True, help_text="The first stage's spec now (secrets masked); null if absent."
    )
    after = serializers.JSONField(help_text="The hotfix's spec (secrets masked).")


class BackportOptionsSerializer(serializers.Serializer):
    target_agent = serializers.UUIDField()
    target_stage = serializers.CharField()
    target_stage_name = serializers.CharField()
    items = BackportItemSerializer(many=True)


class BackportProposeSerializer(StrictSerializer):
    include = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=5000)
    note = serializers.CharField(max_length=5000, allow_blank=True, default="")


class BackportSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    status = serializers.CharField(read_only=True)
    lineage = serializers.CharField(source="lineage.slug", read_only=True)
    source_agent = serializers.UUIDField(source="source_agent_id", read_only=True)
    source_stage = serializers.CharField(source="source_agent.stage.slug", read_only=True)
    target_agent = serializers.UUIDField(source="target_agent_id", read_only=True)
    target_stage = serializers.CharField(source="target_agent.stage.slug", read_only=True)
    note = serializers.CharField(read_only=True)
    items = serializers.SerializerMethodField()
    proposed_by = UserRefSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    decided_by = UserRefSerializer(read_only=True, allow_null=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    decision_note = serializers.CharField(read_only=True)
    applied_version = serializers.IntegerField(read_only=True, allow_null=True)

    def get_items(self, backport) -> list[dict]:
        return [{k: item[k] for k in ("uid", "kind", "name", "change")} for item in backport.items]


class BackportDetailSerializer(BackportSerializer):
    preview = BackportPreviewItemSerializer(many=True, read_only=True)


class BackportApplySerializer(StrictSerializer):
    confirm = serializers.CharField(
        max_length=20, allow_blank=True, trim_whitespace=False, help_text='Exactly "accept".'
    )
    overwrite = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        default=list,
        max_length=5000,
        help_text="Conflicts to apply anyway; every other conflict keeps the first stage's version.",
    )


class ConfirmSerializer(StrictSerializer):
    confirm = serializers.CharField(
        max_length=20, allow_blank=True, trim_whitespace=False, help_text='Exactly "accept".'
    )
    override_freeze = override_freeze_field()


class DeclineSerializer(StrictSerializer):
    note = serializers.CharField(max_length=5000, allow_blank=True, default="")


class DriftItemSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    change = serializers.CharField()
    hotfix = serializers.BooleanField()


class DriftPairSerializer(serializers.Serializer):
    from_stage = serializers.CharField(source="from")
    to = serializers.CharField()
    from_agent = serializers.UUIDField()
    to_agent = serializers.UUIDField()
    differences = serializers.IntegerField()
    items = DriftItemSerializer(many=True)


class DriftStageSerializer(serializers.Serializer):
    stage = serializers.CharField()
    name = serializers.CharField()
    agent = serializers.UUIDField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)


class DriftSerializer(serializers.Serializer):
    lineage = serializers.CharField()
    stages = DriftStageSerializer(many=True)
    pairs = DriftPairSerializer(many=True)


class StageKeySerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    stage = serializers.CharField(source="stage.slug", read_only=True)
    prefix = serializers.CharField(read_only=True)
    created_by = UserRefSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class StageKeyIssuedSerializer(StageKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown this once; only its hash is stored.")


class StageKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)

    class Meta:
        output = StageKeyIssuedSerializer
