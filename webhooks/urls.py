from rest_framework.routers import SimpleRouter

from .api import WebhookViewSet

router = SimpleRouter()
router.register("webhooks", WebhookViewSet, basename="webhooks")

urlpatterns = [*router.urls]
