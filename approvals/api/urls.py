from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("approvals", views.ApprovalViewSet, basename="approvals")

urlpatterns = router.urls
