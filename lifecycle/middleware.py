import re

from django.conf import settings
from django.http import HttpResponseBadRequest

from . import context
from .errors import envelope_response
from .serializers import UNSTORABLE_MESSAGE, find_unstorable, printable

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_ip(request) -> str | None:
    """The client's address, trusting only as many X-Forwarded-For hops as we have proxies."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Give every request an id (or keep a sane incoming one) for logs and the audit log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.id = incoming if _REQUEST_ID.match(incoming) else context.new_request_id()
        request.client_ip = client_ip(request)
        with context.bound(request_id=request.id, client_ip=request.client_ip):
            response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class QueryStringGuardMiddleware:
    """400 for a query string carrying characters no database column can hold.

    Filters flow from query strings into queries; a NUL there would be a 500 on
    PostgreSQL. Bodies are checked by the serializers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name, values in request.GET.lists():
            if any(find_unstorable(value) is not None for value in (name, *values)):
                field = printable(name)
                if request.path.startswith("/api/"):
                    return envelope_response(
                        400, "invalid", f"{field}: {UNSTORABLE_MESSAGE}", fields={field: [UNSTORABLE_MESSAGE]}
                    )
                return HttpResponseBadRequest(UNSTORABLE_MESSAGE)
        return self.get_response(request)


class ApiBodyLimitMiddleware:
    """413 with the error envelope for API bodies over the limit, before anything reads them.

    DRF's parsers read the stream directly, so Django's own upload limit never fires for
    JSON. Imports get a larger limit than everything else.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit = body_limit(request.path)
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return envelope_response(413, "too_large", f"Request body is larger than {limit} bytes.")
        return self.get_response(request)


def body_limit(path: str) -> int:
    """The largest request body accepted on `path`: imports get more than other API calls;
    pages (forms) get Django's own upload limit."""
    if not path.startswith("/api/"):
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if path.rstrip("/").endswith("/import"):
        return settings.API_IMPORT_MAX_BODY_BYTES
    return settings.API_MAX_BODY_BYTES
