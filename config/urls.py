"""URL routes for everything Django serves. The /v1/ proxy is dispatched in config/asgi.py."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularSwaggerSplitView


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and tests: the process serves requests."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(("keys.api.urls", "api"))),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="api-docs"),
    path("security/", include("keys.security_urls")),
    path("", include("keys.urls")),
]
