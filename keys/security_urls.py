"""``/security/``: the endpoints that report leaked keys (``keys/views/security.py``)."""

from django.urls import path

from keys.views import security

app_name = "security"

urlpatterns = [
    path("secret-scanning/github", security.github_partner, name="github-partner"),
    path("secret-scanning/github-alerts", security.github_alert, name="github-alerts"),
    path("report-leak", security.report_leak, name="report-leak"),
]
