from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SSOConfig(AppConfig):
    name = "sso"
    verbose_name = _("Single sign-on")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sso import membership_sync
        from sso.teams import sso_memberships

        if membership_sync.teams_available():
            sso_memberships.connect(membership_sync.sync_memberships, dispatch_uid="sso-team-memberships")
