"""``/api/v1/webhooks/`` (included under the management API's prefix)."""

from rest_framework.routers import SimpleRouter

from notify.api import WebhookEndpointViewSet

router = SimpleRouter()
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
urlpatterns = router.urls
