"""The read-only admins for what Keygate records rather than what operators edit: the keys' audit
trail (KeyEventAdmin) and the gateway's usage records of proxied requests (UsageRecordAdmin).
Nobody may add, change or delete either here: key events are written by :mod:`keys.services`,
usage records by the gateway's usage writer.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from keys.admin.readonly import ReadOnlyAdmin
from keys.models import KeyEvent, UsageRecord


@admin.register(KeyEvent)
class KeyEventAdmin(ReadOnlyAdmin):
    """The audit trail: read-only."""

    list_display = ["created_at", "action", "key_masked", "key_name", "actor", "actor_label", "ip"]
    list_filter = ["action", "actor_label"]
    search_fields = ["key__name", "key__public_id", "actor__username", "ip"]
    list_select_related = ["key", "actor"]
    date_hierarchy = "created_at"

    @admin.display(description=_("key"), ordering="key__public_id")
    def key_masked(self, obj: KeyEvent) -> str:
        return obj.key.masked

    @admin.display(description=_("name"), ordering="key__name")
    def key_name(self, obj: KeyEvent) -> str:
        return obj.key.name


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    """Proxied requests, as the gateway recorded them: read-only."""

    list_display = [
        "created_at",
        "key",
        "model",
        "status_code",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "streamed",
        "aborted",
        "request_id",
    ]
    list_filter = ["status_code", "streamed", "aborted", "endpoint", "provider"]
    search_fields = ["request_id", "model", "key__name", "key__public_id"]
    list_select_related = ["key"]
    date_hierarchy = "created_at"
    show_full_result_count = False
