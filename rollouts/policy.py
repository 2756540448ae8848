"""A stage's policy document: its defaults, its validation and the questions asked of it.

The document (API.md "Stage policy") holds the rules for changes INTO a stage. It is
stored whole in rollouts.models.StagePolicy; a stage without a row has the defaults,
which are "no rule" except `releases.required`, true only for the org's last stage.
"""

from __future__ import annotations

import copy

from accounts.models import Stage
from rollouts.models import StagePolicy


def stored_document(stage: Stage) -> dict:
    """The document as stored for the stage ({} when it has no policy row)."""
    policy = StagePolicy.objects.for_org(stage.org_id).filter(stage=stage).first()
    return copy.deepcopy(policy.document) if policy else {}


def is_last_stage(stage: Stage) -> bool:
    """Whether no stage of the org comes after this one (the org's production)."""
    return not Stage.objects.for_org(stage.org_id).filter(position__gt=stage.position).exists()


def releases_required(stage: Stage) -> bool:
    """Whether new versions in the stage wait for a release before they go live.

    The policy's `releases.required` when set; otherwise true only for the org's last
    stage, so production never changes what it serves without a release.
    """
    releases = stored_document(stage).get("releases") or {}
    required = releases.get("required")
    if required is None:
        return is_last_stage(stage)
    return bool(required)
