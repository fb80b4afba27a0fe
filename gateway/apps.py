from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = _("Gateway")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from gateway import fanout
        from gateway.models import ModelPrice, Provider, Route
        from keys.signals import key_changed

        # Every process that changes a key or a route tells the others (when Redis is configured).
        key_changed.connect(fanout.on_key_changed, dispatch_uid="keygate-fanout-keys")
        for model in (Provider, Route, ModelPrice):
            post_save.connect(fanout.on_routes_changed, sender=model, dispatch_uid=f"keygate-fanout-{model.__name__}")
            post_delete.connect(
                fanout.on_routes_changed, sender=model, dispatch_uid=f"keygate-fanout-d-{model.__name__}"
            )
