"""The browser dashboard: pages to read keys, actions to change them."""

from keys.views.actions import key_bulk, key_create, key_edit, key_pause, key_resume, key_revoke, key_rotate
from keys.views.pages import key_detail, key_list

__all__ = [
    "key_bulk",
    "key_create",
    "key_detail",
    "key_edit",
    "key_list",
    "key_pause",
    "key_resume",
    "key_revoke",
    "key_rotate",
]
