"""Operators' admin for keys and their audit trail.

Writes go through :mod:`keys.services`. "Add key" and "rotate" render the new key once, in the
POST response itself (no redirect, no message storage, ``Cache-Control: no-store``), so the
plaintext never lands in a session, a cookie or the database. No page shows the hash.

Importing this package registers every ModelAdmin of the ``keys`` app (Django's admin
autodiscovery imports ``keys.admin``): :mod:`keys.admin.apikey` (API keys),
:mod:`keys.admin.records` (the audit trail and usage records, read-only) and
:mod:`keys.admin_teams` (teams); the forms live in :mod:`keys.admin.forms`.
"""

from keys import admin_teams  # registers the teams admin
from keys.admin.apikey import APIKeyAdmin, StatusFilter, client_ip
from keys.admin.forms import KeyChangeForm, KeyCreateForm, RotateForm
from keys.admin.records import KeyEventAdmin, UsageRecordAdmin

__all__ = [
    "APIKeyAdmin",
    "KeyChangeForm",
    "KeyCreateForm",
    "KeyEventAdmin",
    "RotateForm",
    "StatusFilter",
    "UsageRecordAdmin",
    "admin_teams",
    "client_ip",
]
