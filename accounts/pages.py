"""Page bases for the org's pages under stages/<slug>/."""

from __future__ import annotations

from functools import cached_property

from django.http import Http404

from lifecycle.ui import OrgPage

from .selectors import stages_of


class StagePage(OrgPage):
    """An org page about the stage its URL names: 404 when the org has no such stage, and
    refused to members without `stage_role` in it (None: the page's own rule decides)."""

    stage_role: str | None = "viewer"

    @cached_property
    def stage(self):
        stage = stages_of(self.org).filter(slug=self.kwargs["slug"]).first()
        if stage is None:
            raise Http404
        if self.stage_role and not self.access.has_stage_role(stage, self.stage_role):
            self.deny("no role in stage")
        return stage
