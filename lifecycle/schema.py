"""OpenAPI generation that documents what the kernel does for every endpoint.

Every operation gets the error envelope for the statuses the kernel can produce
(401, 403/404 under an org, 400/413 on writes, 412 with If-Match, 429), and the
`If-Match` and `Idempotency-Key` headers where they apply.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    details = serializers.DictField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class EnvelopeAutoSchema(AutoSchema):
    def _error_codes(self) -> list[int]:
        # 401 everywhere: even an open endpoint refuses a bad Authorization header.
        codes = [400, 401, 429]
        if "{org}" in self.path:
            codes += [403, 404]
        elif "{" in self.path:
            codes.append(404)
        if self.method in WRITE_METHODS:
            # 409 includes an Idempotency-Key reused with another body.
            codes += [409, 413]
        if self.method in {"PUT", "PATCH", "DELETE"}:
            codes.append(412)
        return codes + list(getattr(self.view, "schema_error_codes", {}).get(self.method, ()))

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in sorted(set(self._error_codes())):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    ErrorEnvelopeSerializer, str(code), direction=direction
                )
        return responses

    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        if self.method in WRITE_METHODS:
            params.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    str,
                    OpenApiParameter.HEADER,
                    description="Repeat-safe key; the first response is replayed for 24 h.",
                )
            )
        if self.method in {"PUT", "PATCH", "DELETE"} and "{" in self.path:
            params.append(
                OpenApiParameter(
                    "If-Match",
                    str,
                    OpenApiParameter.HEADER,
                    description="The ETag you read; a stale one is refused with 412.",
                )
            )
        return params
