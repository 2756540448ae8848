from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle kernel"

    def ready(self) -> None:
        from . import audit_export  # noqa: F401  (registers its operation handler)
