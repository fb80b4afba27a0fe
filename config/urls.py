"""URL routes for everything Django serves. The /v1/ proxy is dispatched in config/asgi.py."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import include, path
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularSwaggerSplitView


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and tests: the process serves requests."""
    return JsonResponse({"status": "ok"})


def password_reset(request: HttpRequest) -> HttpResponse:
    """Django's password reset, or — when no email is configured (settings.KEYGATE_PASSWORD_RESET
    is off) — a page saying to ask an operator. Nothing is sent, logged or stored then."""
    if not settings.KEYGATE_PASSWORD_RESET:
        return render(request, "registration/password_reset_unavailable.html", status=503)
    return auth_views.PasswordResetView.as_view()(request)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/password_reset/", password_reset, name="password_reset"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("sso/", include("sso.urls")),
    path("notifications/", include("notify.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(("notify.api_urls", "notify-api"))),
    path("api/v1/", include(("keys.api.urls", "api"))),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="api-docs"),
    path("security/", include("keys.security_urls")),
    path("", include("keys.urls")),
]
