from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Change approvals"

    def ready(self) -> None:
        """Hook into what rollouts and agents announce; neither imports this app."""
        from agents.hooks import COMPONENTS_CHANGED, DEMO_SEEDERS, VERSION_WRITTEN
        from rollouts.decision import APPROVAL_OPENERS

        from .demo import seed_demo_approvals
        from .services import approval

        if approval.approval_request_open not in APPROVAL_OPENERS:
            APPROVAL_OPENERS.append(approval.approval_request_open)
        if approval.approvals_on_version_written not in VERSION_WRITTEN:
            VERSION_WRITTEN.append(approval.approvals_on_version_written)
        if approval.approvals_on_components_changed not in COMPONENTS_CHANGED:
            COMPONENTS_CHANGED.append(approval.approvals_on_components_changed)
        if seed_demo_approvals not in DEMO_SEEDERS:
            DEMO_SEEDERS.append(seed_demo_approvals)
