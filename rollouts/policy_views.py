"""The stage settings page: a stage's policy, edited by org owners/admins, read by its members.

The form maps onto the policy document of rollouts.policy: gate, approvals, releases and
freeze windows have fields of their own; the parts later issues use (action approvals,
spending, thresholds) are edited as JSON. Errors come back from the same validation as
the API and are shown next to the field they name; what was typed is always put back.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect

from accounts.pages import StagePage
from lifecycle.api import OrgAdmin
from lifecycle.errors import DomainError, PreconditionFailed
from lifecycle.etags import check_if_match, etag_of

from .policy import SOURCES, STRATEGIES, WEEKDAYS, effective_document, stage_policy_update, stored_document
from .spending import stage_spend
from .stage_status import open_alerts, spend_bar
from .templatetags.stage_policy import freeze_status

LATER_PARTS = ("action_approvals", "spending", "thresholds")
BLANK_ROWS = 2


def _number(value: str):
    """A form's number: "" is no rule, an integer stays one, anything else is passed on for
    the policy's validation to name (so "abc" is an error next to its field, not a 500)."""
    value = value.strip()
    if value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


class StagePolicyPage(StagePage):
    template_name = "rollouts/stage_policy.html"
    nav = "stages"
    title = "Stage policy"
    post_rule = OrgAdmin()

    # --- document ⇄ form ------------------------------------------------------------
    def form_from(self, document: dict) -> dict:
        gate, releases = document["gate"], document["releases"]
        stored_required = releases.get("required")
        return {
            "gate_min_executions": gate["min_executions"],
            "gate_min_days": gate["min_days"],
            "gate_mode": gate["mode"],
            "gate_count_sources": gate["count_sources"],
            "gate_min_accuracy": gate["min_accuracy"],
            "gate_max_attack_success_rate": gate["max_attack_success_rate"],
            "gate_max_error_rate": gate["max_error_rate"],
            "gate_max_safety_defect_rate": gate["max_safety_defect_rate"],
            "gate_require_soak": gate["require_soak"],
            "gate_required_suites": ", ".join(gate["required_suites"]),
            "approvals_required": document["approvals"]["required"],
            "approvals_expires_in_hours": document["approvals"]["expires_in_hours"],
            "releases_required": "" if stored_required is None else ("true" if stored_required else "false"),
            "releases_default_strategy": releases["default_strategy"],
            "later": json.dumps({part: document[part] for part in LATER_PARTS}, indent=2),
            "windows": [{**window, "errors": {}} for window in document["freeze_windows"]],
        }

    def form_posted(self, post) -> dict:
        windows = []
        for n in range(int(post.get("window_rows", "0") or 0)):
            key = f"w{n}_"
            windows.append(
                {
                    "row": n,
                    "id": post.get(key + "id", ""),
                    "kind": post.get(key + "kind", ""),
                    "days": post.getlist(key + "days"),
                    "start": post.get(key + "start", ""),
                    "end_day": post.get(key + "end_day", ""),
                    "end": post.get(key + "end", ""),
                    "timezone": post.get(key + "timezone", ""),
                    "starts_at": post.get(key + "starts_at", ""),
                    "ends_at": post.get(key + "ends_at", ""),
                    "reason": post.get(key + "reason", ""),
                    "remove": post.get(key + "remove") == "on",
                    "errors": {},
                }
            )
        return {
            "gate_min_executions": post.get("gate_min_executions", ""),
            "gate_min_days": post.get("gate_min_days", ""),
            "gate_mode": post.get("gate_mode", "any"),
            "gate_count_sources": post.getlist("gate_count_sources"),
            "gate_min_accuracy": post.get("gate_min_accuracy", ""),
            "gate_max_attack_success_rate": post.get("gate_max_attack_success_rate", ""),
            "gate_max_error_rate": post.get("gate_max_error_rate", ""),
            "gate_max_safety_defect_rate": post.get("gate_max_safety_defect_rate", ""),
            "gate_require_soak": post.get("gate_require_soak") == "on",
            "gate_required_suites": post.get("gate_required_suites", ""),
            "approvals_required": post.get("approvals_required", ""),
            "approvals_expires_in_hours": post.get("approvals_expires_in_hours", ""),
            "releases_required": post.get("releases_required", ""),
            "releases_default_strategy": post.get("releases_default_strategy", "direct"),
            "later": post.get("later", ""),
            "windows": windows,
        }

    def document_from(self, form: dict, errors: dict) -> tuple[dict, list[int]]:
        """The document the form describes, and which form row each window came from."""
        gate = {
            "min_executions": _number(form["gate_min_executions"]),
            "min_days": _number(form["gate_min_days"]),
            "mode": form["gate_mode"],
            "count_sources": form["gate_count_sources"],
            "min_accuracy": _number(form["gate_min_accuracy"]),
            "max_attack_success_rate": _number(form["gate_max_attack_success_rate"]),
            "max_error_rate": _number(form["gate_max_error_rate"]),
            "max_safety_defect_rate": _number(form["gate_max_safety_defect_rate"]),
            "require_soak": form["gate_require_soak"],
            "required_suites": [s.strip() for s in form["gate_required_suites"].split(",") if s.strip()],
        }
        approvals = {}
        for key in ("required", "expires_in_hours"):
            value = _number(form[f"approvals_{key}"])
            approvals[key] = 0 if value is None and key == "required" else value
        if approvals["expires_in_hours"] is None:
            del approvals["expires_in_hours"]
        # Groups are set over the API; the form keeps them as they are.
        groups = (stored_document(self.stage).get("approvals") or {}).get("groups")
        if groups:
            approvals["groups"] = groups
        releases = {"default_strategy": form["releases_default_strategy"]}
        if form["releases_required"] in ("true", "false"):
            releases["required"] = form["releases_required"] == "true"
        windows, rows = [], []
        for window in form["windows"]:
            if window["remove"] or not window["kind"]:
                continue
            if window["kind"] == "weekly":
                entry = {
                    "kind": "weekly",
                    "days": window["days"],
                    "start": window["start"],
                    "end": window["end"],
                    "timezone": window["timezone"] or "UTC",
                }
                if window["end_day"]:
                    entry["end_day"] = window["end_day"]
            else:
                entry = {
                    "kind": window["kind"],
                    "starts_at": window["starts_at"],
                    "ends_at": window["ends_at"],
                }
            entry.update(id=window["id"] or None, reason=window["reason"])
            windows.append(entry)
            rows.append(window["row"])
        document = {"gate": gate, "approvals": approvals, "releases": releases, "freeze_windows": windows}
        try:
            later = json.loads(form["later"] or "{}")
        except ValueError as exc:
            errors.setdefault("later", []).append(f"Not valid JSON: {exc}")
            later = {}
        if not isinstance(later, dict):
            errors.setdefault("later", []).append("Expected a JSON object.")
            later = {}
        for part, value in later.items():
            if part not in LATER_PARTS:
                errors.setdefault("later", []).append(f"{part}: not one of {', '.join(LATER_PARTS)}.")
            else:
                document[part] = value
        return document, rows

    @staticmethod
    def place_errors(form: dict, fields: dict, rows: list[int]) -> dict:
        """Dotted paths of the policy's errors → the form's fields (rows keep their own)."""
        placed: dict[str, list[str]] = {}
        by_row = {window["row"]: window for window in form["windows"]}
        for path, problems in fields.items():
            parts = path.split(".")
            if parts[0] == "freeze_windows" and len(parts) >= 3 and parts[1].isdigit():
                row = by_row[rows[int(parts[1])]]
                row["errors"].setdefault(parts[2], []).extend(problems)
            elif parts[0] in ("gate", "approvals", "releases") and len(parts) >= 2:
                placed.setdefault(f"{parts[0]}_{parts[1]}", []).extend(problems)
            elif parts[0] in LATER_PARTS:
                placed.setdefault("later", []).extend(f"{path}: {p}" for p in problems)
            else:
                placed.setdefault("top", []).extend(f"{path}: {p}" if path else p for p in problems)
        return placed

    # --- the page ---------------------------------------------------------------------
    def get_context_data(self, form=None, errors=None, **kwargs):
        context = super().get_context_data(**kwargs)
        document = effective_document(self.stage)
        stored = dict(document["releases"])
        stored["required"] = (stored_document(self.stage).get("releases") or {}).get("required")
        form = form or self.form_from({**document, "releases": stored})
        spend = stage_spend(self.stage)
        blank = {"kind": "", "days": [], "errors": {}, "id": "", "reason": ""}
        form["windows"] = [
            *form["windows"],
            *[
                dict(blank)
                for _ in range(max(0, BLANK_ROWS - sum(1 for w in form["windows"] if not w["kind"])))
            ],
        ]
        context.update(
            stage=self.stage,
            form=form,
            errors=errors or {},
            can_edit=self.access.is_admin,
            version=etag_of(document),
            freeze=freeze_status(self.stage, document["freeze_windows"]),
            spend=spend,
            bar=spend_bar(spend),
            alerts=open_alerts(self.org.pk, [self.stage.pk]).get(self.stage.pk, []),
            effective_releases=document["releases"]["required"],
            weekdays=WEEKDAYS,
            sources=SOURCES,
            strategies=STRATEGIES,
            page_title=f"Policy of {self.stage.name} · {self.org.name}",
        )
        return context

    def get(self, request, *args, **kwargs):
        self.stage  # noqa: B018 (404/403 before rendering)
        return super().get(request, *args, **kwargs)

    def post(self, request, org, slug):
        stage = self.stage
        form = self.form_posted(request.POST)
        errors: dict[str, list[str]] = {}
        document, rows = self.document_from(form, errors)
        try:
            # Conditional on what the editor saw: someone else's change is not overwritten unseen.
            check_if_match(request.POST.get("version") or None, etag_of(effective_document(stage)))
            if errors:
                raise DomainError("Check the highlighted fields.")
            stage_policy_update(access=self.access, stage=stage, document=document)
        except PreconditionFailed:
            errors["top"] = [
                "Someone changed this policy since you opened it. Your input is kept below; "
                "reload the page to see their version before saving again."
            ]
        except DomainError as exc:
            placed = self.place_errors(form, exc.fields, rows)
            for key, problems in placed.items():
                errors.setdefault(key, []).extend(problems)
            if not errors and not any(w["errors"] for w in form["windows"]):
                errors["top"] = [exc.message]
        else:
            messages.success(request, f"Saved the policy of {stage.name}.")
            return redirect("stage-policy", org=self.org.slug, slug=stage.slug)
        context = self.get_context_data(form=form, errors=errors)
        context["version"] = request.POST.get("version", "")
        return self.render_to_response(context, status=400)
