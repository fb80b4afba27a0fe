from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "Keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from keys import receivers

        receivers.connect()  # disabling a user ends their sessions and keys; sign-in starts the session clocks
