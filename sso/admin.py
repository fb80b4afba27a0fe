from django.contrib import admin

from sso.models import Identity


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    """Read-only: identities are written by sign-ins and ``sso sync``."""

    list_display = ("user", "email", "subject", "is_operator", "last_sign_in_at", "last_sync_at")
    search_fields = ("user__username", "email", "subject")
    readonly_fields = (
        *("user", "issuer", "subject", "email", "groups", "team_roles"),
        *("is_operator", "last_sign_in_at", "last_sync_at"),
    )
    exclude = ("refresh_token_encrypted",)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
