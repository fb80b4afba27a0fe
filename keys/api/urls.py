"""``/api/v1/``: the management API and its OpenAPI schema."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from keys.api.teams import TeamViewSet
from keys.api.usage import UsageView
from keys.api.views import KeyViewSet

router = SimpleRouter()
router.register("keys", KeyViewSet, basename="key")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("usage/", UsageView.as_view(), name="usage"),
    *router.urls,
]
