"""Reads of approval requests, scoped to what the caller may see or decide."""

from __future__ import annotations

from django.db.models import Q

from lifecycle.access import Access

from .models import ApprovalDecision, ApprovalRequest, ApprovalStatus


def approvals_visible(access: Access, queryset=None):
    """Requests into stages the caller holds a role in, and their own; all for admins."""
    requests = queryset if queryset is not None else ApprovalRequest.objects.for_org(access.org)
    requests = requests.select_related("agent", "target_stage", "requested_by", "operation").order_by(
        "-created_at", "id"
    )
    if access.is_admin:
        return requests
    return requests.filter(
        Q(requested_by=access.user) | Q(target_stage_id__in=access.stage_ids_with("viewer"))
    )


def approvals_to_review(access: Access, queryset=None):
    """Pending requests the caller may still decide: they manage the target stage, did not
    ask for the change, and have not decided yet."""
    requests = approvals_visible(access, queryset).filter(status=ApprovalStatus.PENDING)
    stage_ids = access.stage_ids_with("manager")
    if stage_ids is not None:
        requests = requests.filter(target_stage_id__in=stage_ids)
    decided = ApprovalDecision.objects.for_org(access.org).filter(user=access.user).values("request_id")
    return requests.exclude(requested_by=access.user).exclude(pk__in=decided)


def approvals_waiting_count(access: Access) -> int:
    """The navigation's badge: one query."""
    stage_ids = access.stage_ids_with("manager")
    if stage_ids is not None and not stage_ids:
        return 0
    return approvals_to_review(access).count()
