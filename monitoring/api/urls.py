from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("alerts", views.AlertViewSet, basename="alerts")

urlpatterns = router.urls
