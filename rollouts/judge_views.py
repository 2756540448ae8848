"""The org's evaluation settings page: the LLM judge, edited by owners and admins.

The same validation as the API (its write serializer, then the service's outbound check),
errors next to their fields, and a conditional save: the form carries the ETag of what
the editor saw, checked again on the locked row, so a concurrent change is never
overwritten unseen. The key is write-only here too: the page says whether one is stored
and never renders it, not even back into a form that failed.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect

from lifecycle.api import OrgAdmin
from lifecycle.errors import DomainError, PreconditionFailed
from lifecycle.etags import check_if_match, etag_of
from lifecycle.ui import OrgPage, record_refusal

from .api.judge import JudgeSettingsWriteSerializer
from .evaluators import JudgeFailed, judge_ask
from .services.judge import KEEP, judge_represent, judge_settings_of, judge_settings_update

# What "Test the judge" sends: a question the demo knowledge answers, and a good answer.
SAMPLE = {
    "question": "How long do I have to return an item?",
    "answer": "You can return any item within 30 days of delivery for a full refund.",
    "context": "You can return any item within 30 days of delivery for a full refund.",
}
FIELDS = ("base_url", "model", "enabled", "key")
# A test from a web request waits less than a run in the worker does.
TEST_TIMEOUT = 15.0
STALE = (
    "Someone changed the judge since you opened this page. Your input is kept below (re-enter "
    "a new key if you typed one); reload the page to see their version before saving again."
)


class JudgeSettingsPage(OrgPage):
    template_name = "rollouts/judge_settings.html"
    nav = "evaluation"
    title = "Evaluation"
    # The endpoint, even without its key, is the org's configuration: admins only, as the API.
    rule = OrgAdmin()

    def get_context_data(self, form=None, errors=None, tested=None, **kwargs):
        context = super().get_context_data(**kwargs)
        current = judge_represent(judge_settings_of(self.org))
        context.update(
            current=current,
            form=form
            or {
                "base_url": current["base_url"] or "",
                "model": current["model"] or "",
                "enabled": current["enabled"] if current["updated_at"] else True,
            },
            errors=errors or {},
            tested=tested,
            version=etag_of(current),
            sample=SAMPLE,
        )
        return context

    def post(self, request, org):
        if "test" in request.POST:
            return self._test()
        post = request.POST
        form = {
            "base_url": post.get("base_url", "").strip(),
            "model": post.get("model", "").strip(),
            "enabled": post.get("enabled") == "on",
        }
        data = {**form}
        if post.get("remove_key") == "on":
            data["key"] = ""
        elif post.get("key"):
            data["key"] = post["key"]
        errors: dict[str, list[str]] = {}
        seen = post.get("version") or None
        try:
            check_if_match(seen, etag_of(judge_represent(judge_settings_of(self.org))))
            serializer = JudgeSettingsWriteSerializer(data=data)
            if not serializer.is_valid():
                for name, problems in serializer.errors.items():
                    where = name if name in FIELDS else "top"
                    errors.setdefault(where, []).extend(str(p) for p in problems)
                raise DomainError("Check the highlighted fields.")
            valid = serializer.validated_data
            judge_settings_update(
                access=self.access,
                base_url=valid["base_url"],
                model=valid["model"],
                enabled=valid["enabled"],
                key=valid.get("key", KEEP),
                # Again on the locked row: of two saves made from one state, one wins.
                guard=(lambda row: check_if_match(seen, etag_of(judge_represent(row)))) if seen else None,
            )
        except PreconditionFailed:
            errors = {"top": [STALE]}
        except DomainError as exc:
            record_refusal(exc)
            if exc.default_code == "outbound_refused":
                errors.setdefault("base_url", []).append(exc.message)
            elif not errors:
                errors["top"] = [exc.message]
        else:
            messages.success(request, "Saved the LLM judge.")
            return redirect("judge-settings", org=self.org.slug)
        context = self.get_context_data(form=form, errors=errors)
        # Kept from the post: saving again must still be checked against what was first seen.
        context["version"] = post.get("version", "")
        return self.render_to_response(context, status=400)

    def _test(self):
        """Score the sample answer with the stored judge; the result shows on the page."""
        settings = judge_settings_of(self.org)
        try:
            scores = judge_ask(settings, timeout=TEST_TIMEOUT, **SAMPLE)
        except JudgeFailed as exc:
            tested = {"ok": False, "message": str(exc)}
        else:
            tested = {"ok": True, "scores": scores}
        return self.render_to_response(self.get_context_data(tested=tested))
