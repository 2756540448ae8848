"""Fields the evaluation endpoints share."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..services.evaluation import DRAFT


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [DRAFT]}]})
class VersionField(serializers.Field):
    """A saved version number, or "draft" for the working copy (default: the latest saved)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", None)
        kwargs.setdefault("help_text", 'A saved version (default: the latest), or "draft".')
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if data == DRAFT:
            return DRAFT
        if isinstance(data, bool) or not isinstance(data, int) or data < 1:
            raise serializers.ValidationError('A saved version number, or "draft".')
        return data

    def to_representation(self, value):
        return value
