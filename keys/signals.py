"""Announcements of key changes. Caches listen to drop what they hold for a key.

``key_changed`` is sent after the change commits, with ``key_id`` and ``public_id``.
"""

from django.dispatch import Signal

key_changed = Signal()
