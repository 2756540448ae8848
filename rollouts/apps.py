from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"
    verbose_name = "Promotion, pulls and releases"

    def ready(self) -> None:
        from agents.hooks import AGENT_ACTIONS

        from . import views
        from .services import backport, promotion, pull, redteam, soak, test_runs  # noqa: F401  (register operation handlers)

        if views.rollout_actions not in AGENT_ACTIONS:
            AGENT_ACTIONS.append(views.rollout_actions)
        from agents.hooks import CHANGE_GUARDS

        from .decision import agent_change_guard

        if agent_change_guard not in CHANGE_GUARDS:
            CHANGE_GUARDS.append(agent_change_guard)
        from agents.hooks import CONVERSATION_GUARDS

        from .spending import conversation_budget_guard

        if conversation_budget_guard not in CONVERSATION_GUARDS:
            CONVERSATION_GUARDS.append(conversation_budget_guard)
        from accounts.hooks import STAGE_SUMMARIES

        from .stage_status import stage_summaries

        if stage_summaries not in STAGE_SUMMARIES:
            STAGE_SUMMARIES.append(stage_summaries)
        from agents.hooks import DEMO_SEEDERS

        from .demo import seed_demo_policies

        if seed_demo_policies not in DEMO_SEEDERS:
            DEMO_SEEDERS.append(seed_demo_policies)
        from .evaluation_demo import demo_seeder

        if demo_seeder not in DEMO_SEEDERS:
            DEMO_SEEDERS.append(demo_seeder)
        self._register_releases()
        from agents.hooks import ACTION_APPROVAL_POLICY

        from .policy import action_approval_policy

        if action_approval_policy not in ACTION_APPROVAL_POLICY:
            ACTION_APPROVAL_POLICY.append(action_approval_policy)

    @staticmethod
    def _register_releases() -> None:
        """Releases decide what a new version does to live traffic, and show on agents."""
        from agents.hooks import ACTIVE_RELEASES, AGENT_ACTIONS, AGENT_TABS, VERSION_WRITTEN

        from . import views
        from .services import release, release_smoke  # noqa: F401  (release_smoke: its operation handler)

        if views.release_actions not in AGENT_ACTIONS:
            AGENT_ACTIONS.append(views.release_actions)
        if views.release_tabs not in AGENT_TABS:
            AGENT_TABS.append(views.release_tabs)
        from .redteam_views import redteam_tabs

        if redteam_tabs not in AGENT_TABS:
            AGENT_TABS.append(redteam_tabs)
        from .suite_views import test_tabs

        if test_tabs not in AGENT_TABS:
            AGENT_TABS.append(test_tabs)
        from .test_run_views import test_run_tabs

        if test_run_tabs not in AGENT_TABS:
            AGENT_TABS.append(test_run_tabs)
        from .soak_views import soak_tabs

        if soak_tabs not in AGENT_TABS:
            AGENT_TABS.append(soak_tabs)
        if release.release_on_version_written not in VERSION_WRITTEN:
            VERSION_WRITTEN.append(release.release_on_version_written)
        if release.active_release_summaries not in ACTIVE_RELEASES:
            ACTIVE_RELEASES.append(release.active_release_summaries)
