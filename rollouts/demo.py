"""The demo's stage policies (`manage.py seed_demo`, through agents.hooks.DEMO_SEEDERS).

Production gets a monthly budget and the weekly "no Friday deploys" freeze. Each part is
written only while the stored policy lacks it, so running the command again never undoes
what someone changed in the demo since.
"""

from __future__ import annotations

from accounts.models import Stage, User
from lifecycle.access import access_for

from .policy import stage_policy_update, stored_document

WEEKEND_FREEZE = {
    "id": "weekend",
    "kind": "weekly",
    "days": ["fri"],
    "start": "12:00",
    "end_day": "mon",
    "end": "08:00",
    "timezone": "Europe/Berlin",
    "reason": "No deploys from Friday noon to Monday morning",
}
SPENDING = {"monthly_budget": "500.00", "alert_at": 0.8, "block": ["live"]}
# The seed guide's thresholds: response time > 3 s warns, > 5 s is critical; error rate
# > 0.5 % warns, > 1 % is critical (monitoring alerts on live traffic).
THRESHOLDS = {
    "latency_p95_ms": {"warning": 3000, "critical": 5000},
    "error_rate": {"warning": 0.005, "critical": 0.01},
}


def seed_demo_policies(*, org) -> str:
    production = Stage.objects.for_org(org).filter(slug="production").first()
    if production is None:
        return ""
    stored = stored_document(production)
    added = {}
    if "spending" not in stored:
        added["spending"] = SPENDING
    if "freeze_windows" not in stored:
        added["freeze_windows"] = [WEEKEND_FREEZE]
    if "thresholds" not in stored:
        added["thresholds"] = THRESHOLDS
    if not added:
        return ""
    owner = User.objects.get(email="owner@acme.test")
    stage_policy_update(access=access_for(owner, org), stage=production, document={**stored, **added})
    return (
        "Production: a monthly budget of 500.00 (alert at 80 %, live traffic refused at 100 %) "
        "and a freeze from Friday 12:00 to Monday 08:00, Europe/Berlin; alerts past 3 s / 5 s "
        "p95 latency and 0.5 % / 1 % errors."
    )
