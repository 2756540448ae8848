"""`Idempotency-Key` replay for unsafe API requests.

A key is scoped to (user, method, path) for 24 hours. The first response (anything
but a 5xx) is stored and replayed for every repeat; a repeat with a different body is
refused, and so is one that arrives while the first is still being handled.

A response that carries a secret (a new API token, a stage key; marked with
`carries_secret`) is never stored: the table would hold the secret in clear and hand it
out again, even after it was revoked. A tombstone is stored instead, and its replay
answers 409: the secret is shown once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.http import HttpResponse
from django.utils import timezone

from .errors import Conflict, Invalid, envelope

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# A pending record this old belongs to a request that died; let the client retry.
ABANDONED_AFTER = timedelta(minutes=2)
REPLAYED_HEADERS = ("ETag", "Location")
SECRET_NOT_REPLAYED = (
    "The response to this Idempotency-Key carried a secret, which is shown once and is not"
    " replayed. Send a new key to make another."
)


def carries_secret(response):
    """Mark a response whose body holds a secret, so idempotency never stores it."""
    response.carries_secret = True
    return response


class IdempotencyRecord(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    # The rendered body, ASCII-escaped: it may echo back anything a client sent.
    body = models.BinaryField(null=True)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key", "method", "path"], name="idempotency_key_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class Replay(Exception):
    def __init__(self, record: IdempotencyRecord):
        self.record = record


def idempotency_begin(request) -> IdempotencyRecord | None:
    """Claim the request's key, or raise `Replay` / `Conflict` for a repeat."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or request.method not in UNSAFE_METHODS:
        return None
    if len(key) > 200:
        raise Invalid(fields={"Idempotency-Key": ["Must be at most 200 characters."]})
    user = request.user
    body_hash = hashlib.sha256(request._request.body or b"").hexdigest()
    scope = {"user": user, "key": key, "method": request.method, "path": request.path[:500]}
    now = timezone.now()
    ttl = timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    existing = IdempotencyRecord.objects.filter(**scope).first()
    if existing is not None:
        expired = existing.created_at < now - ttl
        abandoned = existing.status is None and existing.created_at < now - ABANDONED_AFTER
        if expired or abandoned:
            existing.delete()
        elif existing.request_hash != body_hash:
            raise Conflict("This Idempotency-Key was already used with a different request body.")
        elif existing.status is None:
            raise Conflict("A request with this Idempotency-Key is still being handled.")
        else:
            raise Replay(existing)
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(request_hash=body_hash, **scope)
    except IntegrityError as exc:
        raise Conflict("A request with this Idempotency-Key is still being handled.") from exc


def idempotency_complete(record: IdempotencyRecord, response) -> None:
    if response.status_code >= 500 or not isinstance(getattr(response, "data", None), (dict, list)):
        record.delete()
        return
    if getattr(response, "carries_secret", False):
        record.status = Conflict.status_code
        record.body = json.dumps(envelope(Conflict.default_code, SECRET_NOT_REPLAYED)).encode()
        record.headers = {}
    else:
        record.status = response.status_code
        record.body = json.dumps(response.data, cls=DjangoJSONEncoder, ensure_ascii=True).encode()
        record.headers = {h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)}
    record.save(update_fields=["status", "body", "headers"])


def idempotency_abandon(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def replay_response(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.body), status=record.status, content_type="application/json")
    for name, value in record.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_purge() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
