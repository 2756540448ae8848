"""The `{"text": …}` body of a Slack-compatible delivery: one readable sentence with links."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

TITLES = {
    "promotion.requested": "Promotion requested",
    "promotion.succeeded": "Promotion succeeded",
    "promotion.failed": "Promotion failed",
    "pull.succeeded": "Pull succeeded",
    "pull.failed": "Pull failed",
    "backport.proposed": "Back-port proposed",
    "backport.applied": "Back-port applied",
    "backport.declined": "Back-port declined",
    "approval.requested": "Approval requested",
    "approval.approved": "Approval granted",
    "approval.rejected": "Approval rejected",
    "approval.expired": "Approval expired",
    "gate.failed": "Gate failed",
    "test_run.finished": "Test run finished",
    "red_team.finished": "Red-team run finished",
    "soak.finished": "Soak finished",
    "release.started": "Release started",
    "release.advanced": "Release advanced",
    "release.paused": "Release paused",
    "release.resumed": "Release resumed",
    "release.succeeded": "Release succeeded",
    "release.rolled_back": "Release rolled back",
    "alert.opened": "Alert opened",
    "alert.resolved": "Alert resolved",
    "ping": "Test delivery",
}


def escape(text) -> str:
    # Slack's mrkdwn gives these three characters meaning; everything else is literal.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def absolute(path: str) -> str:
    return settings.PUBLIC_URL.rstrip("/") + path


def _link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>"


def event_link(org_slug: str, data: dict) -> str | None:
    """The page an event is about, as an absolute URL, when it names one."""
    own = data.get("url")
    if isinstance(own, str) and own.startswith(f"/orgs/{org_slug}/") and "//" not in own:
        return absolute(own)  # the event's own page (an approval's)
    try:
        if data.get("agent"):
            return absolute(reverse("agent", kwargs={"org": org_slug, "agent_id": data["agent"]}))
        if data.get("operation"):
            return absolute(reverse("operation", kwargs={"org": org_slug, "operation_id": data["operation"]}))
    except NoReverseMatch:
        return None
    return None


def slack_text(payload: dict) -> str:
    event, org, data = payload["event"], payload["org"], payload.get("data") or {}
    words = [f"*{escape(TITLES.get(event, event))}*"]
    agent_name = data.get("agent_name")
    link = event_link(org, data)
    if agent_name:
        words.append("for " + (_link(link, agent_name) if link else escape(agent_name)))
    source, target = data.get("from_stage"), data.get("to_stage") or data.get("target_stage")
    if source and target:
        words.append(f"from {escape(source)} to {escape(target)}")
    elif target or data.get("stage"):
        words.append(f"in {escape(target or data.get('stage'))}")
    if data.get("version") is not None:
        words.append(f"(version {escape(data['version'])})")
    sentence = " ".join(words)
    detail = data.get("outcome") or data.get("reason") or data.get("message")
    if not detail and data.get("failed_checks"):
        detail = "failed " + ", ".join(str(c.get("name", "?")) for c in data["failed_checks"])
    if detail:
        sentence += f": {escape(detail)}"
    sentence += f" — org {escape(org)}."
    if link and not agent_name:
        sentence += " " + _link(link, "Open in Lifecycle")
    if event == "ping":
        sentence = f"*Test delivery* from Lifecycle for org {escape(org)}: this webhook works."
    return sentence
