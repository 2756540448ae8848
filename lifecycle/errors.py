"""Domain errors and the one error envelope.

Services raise the errors below; the API maps every exception to
`{"error": {"code", "message", "fields", "details"}}` here, and the UI shows the same
message next to the form. Nothing else builds an error body.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "Not found."


class DomainError(drf.APIException):
    """An error a service raises on purpose. Carries its envelope code, fields, details."""

    status_code = 400
    default_code = "invalid"
    default_detail = "Invalid request."

    def __init__(self, message: str | None = None, *, fields=None, details=None):
        super().__init__(message or self.default_detail, self.default_code)
        self.message = str(message or self.default_detail)
        self.fields = fields or {}
        self.details = details or {}


class Invalid(DomainError):
    status_code, default_code, default_detail = 400, "invalid", "Invalid input."


class Unauthenticated(DomainError):
    status_code, default_code, default_detail = 401, "unauthenticated", "Not authenticated."


class BudgetExhausted(DomainError):
    status_code, default_code = 402, "budget_exhausted"
    default_detail = "The stage's monthly budget is spent."


class Forbidden(DomainError):
    status_code, default_code = 403, "forbidden"
    default_detail = "You do not have permission to do this."


class NotFound(DomainError):
    status_code, default_code, default_detail = 404, "not_found", NOT_FOUND_MESSAGE


class Conflict(DomainError):
    status_code, default_code, default_detail = 409, "conflict", "Conflict."


class GateFailed(DomainError):
    status_code, default_code, default_detail = 409, "gate_failed", "The stage's gate failed."


class NotLive(DomainError):
    status_code, default_code = 409, "not_live"
    default_detail = "This agent has no live version: a release makes one live."


class PreconditionFailed(DomainError):
    status_code, default_code = 412, "precondition_failed"
    default_detail = "The resource has changed since you read it (stale If-Match)."


class TooLarge(DomainError):
    status_code, default_code, default_detail = 413, "too_large", "Request is too large."


class Frozen(DomainError):
    status_code, default_code = 423, "frozen"
    default_detail = "The stage is in a freeze window."


class EditorsActive(DomainError):
    status_code, default_code = 428, "editors_active"
    default_detail = "Other people are editing this agent. Acknowledge them to go on."


class Throttled(DomainError):
    status_code, default_code, default_detail = 429, "throttled", "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


def envelope(code: str, message: str, fields=None, details=None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "fields": fields or {},
            "details": details or {},
        }
    }


def envelope_response(status: int, code: str, message: str, fields=None, details=None):
    """For places outside DRF (middleware, URL fallbacks, handler500)."""
    return JsonResponse(envelope(code, message, fields, details), status=status)


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"spec.utterances.0": ["…"]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            for k, v in flatten_fields(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.setdefault(prefix, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item in ({}, [], None):
                    continue
                path = f"{prefix}.{index}" if prefix else str(index)
                for k, v in flatten_fields(item, path).items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix, []).append(str(detail))
    return out


def summary(fields: dict[str, list[str]], fallback: str) -> str:
    for path, messages in fields.items():
        if messages:
            return f"{path}: {messages[0]}" if path else messages[0]
    return fallback


_DRF_CODES = {
    drf.ParseError: "invalid",
    drf.AuthenticationFailed: "unauthenticated",
    drf.NotAuthenticated: "unauthenticated",
    drf.PermissionDenied: "forbidden",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
}


def to_envelope(exc) -> tuple[int, dict, dict] | None:
    """(status, body, headers) for an exception, or None if it is a real server error."""
    headers: dict[str, str] = {}
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = Forbidden(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = TooLarge()
    elif isinstance(exc, ProtectedError):
        exc = Conflict("It is still in use and cannot be deleted.")
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        exc = Invalid(fields=flatten_fields(detail))

    if isinstance(exc, DomainError):
        fields = exc.fields
        message = exc.message
        if isinstance(exc, Invalid) and fields and message == Invalid.default_detail:
            message = summary(fields, message)
        if isinstance(exc, NotFound):
            message = NOT_FOUND_MESSAGE
        if isinstance(exc, Throttled) and exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        return exc.status_code, envelope(exc.default_code, message, fields, exc.details), headers

    if isinstance(exc, drf.ValidationError):
        fields = flatten_fields(exc.detail)
        return 400, envelope("invalid", summary(fields, "Invalid input."), fields), headers

    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Error."
        if code == "not_found":
            message = NOT_FOUND_MESSAGE
        if isinstance(exc, drf.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        return exc.status_code, envelope(code, message), headers
    return None


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error becomes the envelope; bugs stay 500s."""
    mapped = to_envelope(exc)
    if mapped is None:
        return None
    status, body, headers = mapped
    response = Response(body, status=status, headers=headers)
    if status == 401 and "WWW-Authenticate" not in headers:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/ get the envelope too."""
    from django.urls import Resolver404, resolve

    details = {}
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            details["hint"] = f"API paths end with a slash: {request.path}/"
    return envelope_response(404, "not_found", NOT_FOUND_MESSAGE, details=details)


def handler500(request):
    if request.path.startswith("/api/"):
        return envelope_response(500, "server_error", "Internal server error.")
    from django.views.defaults import server_error

    return server_error(request)
