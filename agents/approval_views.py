"""The action-approvals inbox: tool calls waiting for a person, decided from the page."""

from __future__ import annotations

import json
import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect

from lifecycle.errors import DomainError
from lifecycle.ui import OrgPage, flash_error

from .models import ActionApprovalStatus
from .selectors import action_approvals_visible
from .services.action_approvals import action_approval_decide

RECENT = 50


class ActionApprovalsPage(OrgPage):
    template_name = "agents/action_approvals.html"
    nav = "approvals"  # the second tab of the Approvals inbox
    title = "Action approvals"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = action_approvals_visible(self.access).select_related(
            "agent", "stage", "decided_by", "conversation"
        )
        pending = [self._row(a) for a in rows.filter(status=ActionApprovalStatus.PENDING)[:200]]
        decided = [self._row(a) for a in rows.exclude(status=ActionApprovalStatus.PENDING)[:RECENT]]
        context.update(pending=pending, decided=decided, highlight=self.request.GET.get("approval", ""))
        return context

    def _row(self, approval) -> dict:
        return {
            "approval": approval,
            "parameters": json.dumps(approval.parameters, indent=2, ensure_ascii=False),
            "can_decide": approval.status == ActionApprovalStatus.PENDING
            and self.access.has_stage_role(approval.stage_id, "editor"),
        }

    def post(self, request, org):
        try:
            approval = (
                action_approvals_visible(self.access)
                .filter(pk=uuid.UUID(request.POST.get("approval", "")))
                .first()
            )
        except ValueError:
            approval = None
        if approval is None:
            raise Http404
        decision = (
            ActionApprovalStatus.REJECTED if "reject" in request.POST else ActionApprovalStatus.APPROVED
        )
        try:
            action_approval_decide(
                access=self.access,
                approval=approval,
                decision=decision,
                comment=request.POST.get("comment", "")[:2000],
            )
            messages.success(request, f"{approval.tool_name}: {decision}.")
        except DomainError as exc:
            flash_error(request, exc)
        return redirect("action-approvals", org=self.org.slug)
