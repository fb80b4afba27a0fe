from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = _("Keys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from keys import receivers

        receivers.connect()  # disabling a user ends their sessions and keys; sign-in starts the session clocks
