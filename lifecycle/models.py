"""The kernel's models live beside the code that owns them; Django finds them here."""

from .audit import AuditEvent
from .audit_export import OperationArtifact
from .idempotency import IdempotencyRecord
from .operations import Operation

__all__ = ["AuditEvent", "IdempotencyRecord", "Operation", "OperationArtifact"]
