"""Serializer building blocks shared by every app."""

import re

from rest_framework import serializers

MAX_JSON_DEPTH = 20
# What JSON can carry but PostgreSQL cannot store: NUL, and lone UTF-16 surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Null characters and unpaired surrogates are not allowed."


def printable(text: str) -> str:
    """`text`, with anything unstorable escaped, safe to echo back in an error."""
    if not _UNSTORABLE.search(text):
        return text
    return text.encode("unicode_escape").decode("ascii")


class StrictSerializer(serializers.Serializer):
    """Rejects unknown fields by name, so a typo such as `changlog` is caught.

    Fields of the resource's read representation (`Meta.output`) are ignored instead:
    a client may send back what it read.
    """

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            return super().to_internal_value(data)
        writable = {name for name, f in self.fields.items() if not f.read_only}
        tolerated = set(self.fields) | self._output_fields()
        errors = {printable(str(key)): ["Unknown field."] for key in data if key not in tolerated}
        bad = find_unstorable(data)
        if bad is not None:
            errors.setdefault(bad, []).append(UNSTORABLE_MESSAGE)
            raise serializers.ValidationError(errors)
        data = {key: value for key, value in data.items() if key in writable}
        # DRF turns 0 into "0" for a string field; the schema says string, so do we.
        for name, value in list(data.items()):
            if isinstance(self.fields[name], serializers.CharField) and not isinstance(
                value, (str, type(None))
            ):
                errors[name] = ["Not a valid string."]
                del data[name]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors = {**exc.detail, **errors}
        if errors:
            # Every problem at once, unknown fields included, so one round trip fixes all.
            raise serializers.ValidationError(errors)
        return value

    @classmethod
    def _output_fields(cls) -> set[str]:
        meta = getattr(cls, "Meta", None)
        output = getattr(meta, "output", None)
        return set(output().fields) if output else set()


def find_unstorable(value, path: str = "", depth: int = 0) -> str | None:
    """The dotted path of the first unstorable character (or over-deep nesting) in JSON."""
    if depth > MAX_JSON_DEPTH:
        return path or "."
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{printable(str(key))}" if path else printable(str(key))
            if _UNSTORABLE.search(str(key)):
                return sub
            found = find_unstorable(item, sub, depth + 1)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}.{index}" if path else str(index), depth + 1)
            if found is not None:
                return found
    return None


class SafeJSONField(serializers.JSONField):
    """Any JSON, minus what PostgreSQL refuses and absurd nesting."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        bad = find_unstorable(value)
        if bad is not None:
            raise serializers.ValidationError(f"{UNSTORABLE_MESSAGE} (at {bad or 'top level'})")
        return value


class UserRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)


class OperationRefSerializer(serializers.Serializer):
    """`{"operation": {...}}`, the body of every 202."""

    operation = serializers.DictField()
