"""Denials decided outside the sealed bases, written to the audit log all the same.

- A signed-in user knocking on an org they are not a member of (API, pages, sockets).
- CSRF failures (`CSRF_FAILURE_VIEW`, and DRF's own session check under /api/).
- Failed sign-ins (the UI form and POST /api/v1/auth/token/).

Each is an `access.denied` (or `auth.login_failed`) entry in the org concerned. When no
org is known (an anonymous request, an email nobody has) there is no log to write to:
the denial is logged instead, structured, never with a password.
"""

from __future__ import annotations

import logging
import re

from django.contrib.auth import get_user
from django.views.csrf import csrf_failure as django_csrf_failure

from .audit import audit_record
from .errors import envelope_response

logger = logging.getLogger("lifecycle.denials")

# /orgs/<org>/… (pages) and /api/v1/orgs/<org>/… (the API).
ORG_IN_PATH = re.compile(r"^/(?:api/v1/)?orgs/(?P<org>[-a-zA-Z0-9_]{1,50})/")


def _live_org(slug: str):
    from accounts.models import Organization

    return Organization.objects.filter(slug=slug, archived_at__isnull=True).first() if slug else None


def audit_outsider(*, user, slug: str, method: str, path: str) -> None:
    """A signed-in non-member asked for an org's page, endpoint or socket."""
    if not getattr(user, "is_authenticated", False):
        return
    org = _live_org(slug)
    if org is not None:
        audit_record(
            org=org,
            actor=user,
            action="access.denied",
            target_type="organization",
            target_id=str(org.pk),
            changes={"method": method, "path": path[:300], "reason": "not a member"},
        )


def record_csrf_failure(request, reason: str) -> None:
    # From the session itself: DRF has already replaced request.user with an anonymous one
    # when its own CSRF check fails.
    user = get_user(request) if hasattr(request, "session") else None
    match = ORG_IN_PATH.match(request.path)
    org = _live_org(match["org"]) if match else None
    # Only a signed-in user's failure goes in an org's log: anonymous requests could
    # otherwise fill any org's log at will. They are logged.
    if org is not None and getattr(user, "is_authenticated", False):
        audit_record(
            org=org,
            actor=user,
            action="access.denied",
            target_type="csrf",
            changes={"method": request.method, "path": request.path[:300], "reason": f"CSRF: {reason}"[:200]},
        )
    else:
        logger.warning(
            "csrf failure",
            extra={"path": request.path[:300], "method": request.method, "reason": reason[:200]},
        )


def csrf_failure(request, reason: str = ""):
    """settings.CSRF_FAILURE_VIEW: recorded, then a 403 (the envelope under /api/)."""
    record_csrf_failure(request, reason)
    if request.path.startswith("/api/"):
        return envelope_response(403, "forbidden", f"CSRF verification failed: {reason}")
    return django_csrf_failure(request, reason)


def record_login_failure(*, email: str, ip: str | None, reason: str) -> None:
    """A refused sign-in: in the log of every org the account belongs to, or logged."""
    from accounts.models import Membership, User

    user = User.objects.filter(email__iexact=email).first() if email else None
    memberships = list(Membership.objects.for_user(user).select_related("org")) if user else []
    for membership in memberships:
        audit_record(
            org=membership.org,
            actor=None,  # nobody signed in: the account is the target
            action="auth.login_failed",
            target=user,
            target_repr=user.email,
            changes={"email": user.email, "reason": reason},
        )
    if not memberships:
        # No org to attach it to (no such account, or one in no org).
        logger.warning(
            "auth.login_failed",
            extra={"email": email[:254], "ip": ip or "", "reason": reason, "known_account": user is not None},
        )
