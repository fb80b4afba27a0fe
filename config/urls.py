"""URL routes for everything Django serves. The /v1/ proxy is dispatched in config/asgi.py."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
